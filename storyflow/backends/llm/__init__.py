"""LLM backends: write storyboards and shot prompts (one module or package per backend)."""
