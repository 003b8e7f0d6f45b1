"""The commands of the command line, one file each (registered in `COMMANDS`); `cli.py`
assembles them. Every command's flags are generated from small dataclasses."""
