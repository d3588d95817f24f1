"""storyflow: turn a written story into a finished short film."""

__version__ = "0.1.0"
