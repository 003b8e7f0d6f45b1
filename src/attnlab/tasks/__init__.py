"""What `attnlab train TASK` trains, one file per task (registered in `TASKS`): its data
settings, presets, batches, loss, evaluation, and how `attnlab eval` scores its models."""
