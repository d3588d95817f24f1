"""Effects backends: sound derived from each shot's picture, video-to-audio (one module or package each)."""
