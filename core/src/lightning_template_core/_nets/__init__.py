"""Network building blocks that more than one task uses (plain torch.nn, no torchvision)."""
