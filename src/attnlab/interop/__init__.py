"""Models in and out of attnlab: HuggingFace GPT-2 and BERT folders (`hf.py`, one file per
family in `families/`) and ONNX (`onnx.py`)."""
