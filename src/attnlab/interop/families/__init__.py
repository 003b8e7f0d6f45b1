"""HF model families attnlab converts, one file each (registered in `interop.hf.FAMILIES`)."""
