"""Learning-rate schedules, one file each (registered in `SCHEDULES`, chosen by
`--schedule NAME`).

A schedule is a class built as `Schedule(cfg, model)` (the `TrainConfig`, and the model for
schedules that depend on its shape); calling it with the step about to be taken (from 0) and
`progress`, the share of the step or time budget spent (0 to 1), gives the learning rate. It
must depend on nothing else, so a resumed run follows the schedule of an uninterrupted one.
"""
