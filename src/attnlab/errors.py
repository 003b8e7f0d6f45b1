"""Errors a user can fix. The command line prints their message on one line and exits 2."""


class UserError(Exception):
    """Bad input: a missing or malformed file, an impossible setting. The message names the
    file or setting, the problem and, where there is one, the fix."""


class ConfigError(UserError, ValueError):
    """A setting a user gave is not valid; the message says which and why."""
