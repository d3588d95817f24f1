"""Video backends: make clips from prompts, first frames and the tails of clips (one module or package each)."""
