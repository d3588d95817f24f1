"""The MusicGen score: each shot's mood described in words and played by MusicGen (transformers).

`--music-backend musicgen --music-option model=facebook/musicgen-small` (a hub id; also
musicgen-medium, -large, -stereo-*) or `model=/models/my-musicgen` (a folder saved with
save_pretrained: the model and its processor, i.e. T5 tokenizer and EnCodec feature
extractor). The model is loaded once per process.

How a score is made:
1. every cue's mood becomes a text description (DESCRIPTIONS, plus the `style` option);
2. one piece is generated per distinct mood and length (a film with six calm shots of the
   same length asks MusicGen once), `max_new_tokens` from the length and the codec's frame
   rate, never longer than `max_seconds_per_cue` (MusicGen was trained on 30 s clips);
3. each piece is resampled to the film's rate, looped (with a short crossfade at the seam)
   or trimmed to its cue and brought to `level_db` peak; the cues are crossfaded at shot
   boundaries as every score's are (MusicBackend).
Sampling is seeded from the film's seed, the mood and the length, so the same film gives the
same score; the global torch generator is left as it was. torch and transformers are
imported only when music is made.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from storyflow.backends.base import MusicBackend, MusicCue
from storyflow.backends.torch_models import (
    WARM,
    TorchModel,
    TorchOptions,
    loading,
    model_source,
    on_device,
    quiet_libraries,
    resolve_dtype,
    running,
    seeded,
)
from storyflow.core.errors import BackendUnavailableError, GenerationError

if TYPE_CHECKING:
    import numpy as np

INSTALL = 'pip install "storyflow[transformers]"'
LOOP_SEAM_S = 0.25  # crossfade where a piece shorter than its cue repeats

# What MusicGen is asked to play for each mood of storyflow.core.vocabulary.MOODS.
DESCRIPTIONS: dict[str, str] = {
    "calm": "calm ambient piano with soft pads, slow tempo, gentle and peaceful film score",
    "tense": "tense cinematic underscore, pulsing low strings, ticking percussion, suspenseful",
    "joyful": "joyful upbeat acoustic guitar and light percussion, bright major key, happy",
    "melancholy": "melancholy solo cello and sparse piano, slow, minor key, sad film score",
    "mysterious": "mysterious dark synth textures, distant bells, slow and curious, minor mode",
    "triumphant": "triumphant orchestral brass and timpani, heroic fanfare, epic film score",
    "eerie": "eerie ambient drones, detuned music box, dissonant and unsettling horror score",
    "romantic": "romantic warm strings and harp, tender slow waltz, film score",
    "playful": "playful pizzicato strings and xylophone, bouncy and whimsical cartoon music",
}


class MusicgenOptions(TorchOptions):
    guidance: float = Field(default=3.0, ge=0.0, le=20.0, description="classifier-free guidance (MusicGen's "
                            "guidance_scale): higher follows the description more closely; 1 or less: off")  # fmt: skip
    max_seconds_per_cue: float = Field(default=30.0, gt=0.0, le=120.0, description="longest piece generated for "
                                       "one cue; a longer cue loops it")  # fmt: skip
    style: str = Field(default="", description="words added to every mood's description, e.g. 'lo-fi, 90 bpm'")
    crossfade_s: float = Field(default=0.6, ge=0.0, le=4.0, description="blend between cues")
    level_db: float = Field(default=-14.0, ge=-40.0, le=0.0, description="peak level of the score")


class MusicgenScore(TorchModel, MusicBackend):
    name = "musicgen"
    version = "2"  # 2: each cue at the stated peak level
    description = "MusicGen (transformers) plays a description of each shot's mood (hub id or folder)"
    Options = MusicgenOptions
    requires = ("torch", "transformers")
    install = INSTALL

    options: MusicgenOptions

    def __init__(self, options: MusicgenOptions | None = None) -> None:
        super().__init__(options)
        self._pieces: dict[tuple[str, int, int, int], Any] = {}  # (mood, frames, seed, rate) -> stereo piece

    def describe(self, mood: str) -> str:
        """The words MusicGen is given for `mood` (a mood outside the table is described by its name)."""
        text = DESCRIPTIONS.get(mood, f"{mood} cinematic film score")
        return f"{text}, {self.options.style.strip()}" if self.options.style.strip() else text

    # ------------------------------------------------------------ loaded once

    def load(self) -> tuple[Any, Any]:
        """(processor, model), loaded on first use in this process and kept warm."""
        key = self.warm_key()
        return WARM.get(key, lambda: self._load(key[3]))

    def _load(self, device: str) -> tuple[Any, Any]:
        from transformers import AutoConfig, AutoProcessor, MusicgenForConditionalGeneration
        quiet_libraries()
        options = self.options
        source = model_source(options.model, self.kind, self.name)
        with loading(f"the music backend '{self.name}'", options.model, device):
            config = AutoConfig.from_pretrained(source, revision=options.revision)
            if config.model_type != "musicgen":  # another model's weights would load as random MusicGen ones
                raise BackendUnavailableError(
                    f"the music backend '{self.name}': {options.model} holds a {config.model_type} model, "
                    "not MusicGen",
                    fix="point --music-option model=... at a MusicGen model, e.g. facebook/musicgen-small",
                )
            processor = AutoProcessor.from_pretrained(source, revision=options.revision)
            model = MusicgenForConditionalGeneration.from_pretrained(
                source, revision=options.revision, config=config, dtype=resolve_dtype(options.dtype, device)
            )
            model = model.to(device).eval()
        return processor, model

    # ------------------------------------------------------------ composing

    def compose_cue(self, cue: MusicCue, seed: int, sample_rate: int) -> np.ndarray:
        """One cue: its mood's piece (generated once per mood and length, then kept) looped or trimmed to the
        cue, at the stated peak level."""
        import numpy as np

        n = max(0, round((cue.end - cue.start) * sample_rate))
        frames = self._frames(n / sample_rate)
        piece_key = (cue.mood, frames, seed, sample_rate)
        if piece_key not in self._pieces:
            self._pieces[piece_key] = self._piece(cue.mood, frames, seed, sample_rate)
        part = _loop(self._pieces[piece_key], n, round(LOOP_SEAM_S * sample_rate))
        peak = float(np.abs(part).max()) if n else 0.0
        return part * np.float32(10 ** (self.options.level_db / 20) / peak) if peak > 0 else part

    def _frames(self, seconds: float) -> int:
        """Codec frames to generate for a cue of `seconds`: at most max_seconds_per_cue, and at most what the
        decoder's positions hold (musicgen-small: 2048, about 40 s)."""
        _, model = self.load()
        rate = float(model.config.audio_encoder.frame_rate)
        frames = math.ceil(min(seconds, self.options.max_seconds_per_cue) * rate - 1e-6)
        most = int(model.config.decoder.max_position_embeddings) - model.decoder.num_codebooks - 1
        return max(1, min(frames, most))

    def _piece(self, mood: str, frames: int, seed: int, sample_rate: int) -> np.ndarray:
        """One generation: `frames` codec frames of `mood`, as float32 stereo at `sample_rate`."""
        import numpy as np
        import torch

        from storyflow.media.sound import resample

        processor, model = self.load()
        device = self.warm_key()[3]
        inputs = processor(text=[self.describe(mood)], padding=True, return_tensors="pt").to(device)
        # the decoder writes its codebooks with a delay pattern: codebook k lags k steps behind the first
        delay = model.decoder.num_codebooks // model.config.decoder.audio_channels - 1
        guidance = max(self.options.guidance, 1.0)  # 1: no classifier-free guidance
        with on_device(device), running(f"musicgen ({mood})", device), seeded(_seed(seed, mood, frames), device):
            with torch.inference_mode():
                audio = model.generate(**inputs, do_sample=True, guidance_scale=guidance,
                                       max_new_tokens=frames + delay)  # fmt: skip
        piece = audio[0].float().cpu().numpy().T  # (samples, channels)
        if piece.shape[0] == 0 or not np.all(np.isfinite(piece)):
            raise GenerationError(f"musicgen produced no usable audio for the mood '{mood}'",
                                  fix="try dtype=float32, or another model")  # fmt: skip
        if piece.shape[1] == 1:
            piece = np.repeat(piece, 2, axis=1)
        return resample(piece[:, :2], int(model.config.audio_encoder.sampling_rate), sample_rate)


def _loop(piece: np.ndarray, n: int, seam: int) -> np.ndarray:
    """`piece` trimmed to `n` samples, or repeated to fill them with an equal-power crossfade at each seam."""
    import numpy as np

    if len(piece) >= n:
        return piece[:n]
    seam = min(seam, len(piece) // 2)
    if seam == 0:
        return np.resize(piece, (n, piece.shape[1]))
    ramp = np.sin(np.linspace(0, np.pi / 2, seam, dtype=np.float32))[:, None] ** 2
    out = np.zeros((n + len(piece), piece.shape[1]), dtype=np.float32)
    at, step = 0, len(piece) - seam
    while at < n:
        part = piece.copy()
        if at > 0:
            part[:seam] *= ramp
        part[-seam:] *= ramp[::-1]
        out[at : at + len(part)] += part
        at += step
    return out[:n]


def _seed(seed: int, *parts: object) -> int:
    digest = hashlib.sha256(":".join(str(part) for part in (seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63
