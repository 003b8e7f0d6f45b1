"""The names of the files attnlab writes into a folder. `runs.RunFolder` owns a run folder and
is where the code asks for them; a model saved on its own (`model.save(folder, tokenizer)`)
writes the model's and the tokenizer's."""

CONFIG = "config.json"  # what to build: model kind, shape, options
WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"  # HuggingFace's own tokenizer file, as is
TOKENIZER_SETTINGS = "tokenizer_attnlab.json"  # the tokenizer's kind (and state, for bytes/chars)
LABELS = "labels.json"  # a classifier's class names, in output order
CHECKPOINT = "checkpoint.safetensors"
SETTINGS = "train.json"
RESULTS = "results.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
CURVES = "curves.png"
BIT_ERROR_PLOT = "bit-error.png"  # an algorithmic run's bit error against length
MEMORY_PLOT = "memory.png"  # its memory weightings over one example
PAGE = "attention.html"  # what `attnlab look` writes by default
LOCK = ".lock"
