"""The one training loop (`loop.py`) and the pieces it calls: the optimiser and schedule,
data parallelism, callbacks for progress, metrics, evaluation, checkpoints and interrupts."""
