"""Optimisers, one file each (registered in `OPTIMIZERS`, chosen by `--optimizer NAME`).

An optimiser is a callable class: `Optimizer.build(model, cfg, device)` returns a
`torch.optim.Optimizer` (whose `state_dict` the checkpoint saves) for the model's trainable
parameters; `cfg` is the `TrainConfig`, `cfg.options_for(cls)` its own options. A model may
carry `lr_scales` (parameter name -> factor of the schedule's rate), which an optimiser honours
by putting those parameters in groups with that "lr_scale".
"""
