"""Bridges to other tools: nnU-Net, MONAI bundles and Hugging Face-format weights."""
