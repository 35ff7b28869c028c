"""Datasets and samplers of the plugin's tasks (the sampler decides a batch, the dataset makes its tensors)."""
