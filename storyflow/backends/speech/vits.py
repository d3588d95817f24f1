"""The VITS narrator: MMS-TTS and other VITS voices run in this process with transformers.

`--speech-backend vits --speech-option model=facebook/mms-tts-eng` (a hub id; MMS-TTS has
one per language, e.g. mms-tts-fra, mms-tts-deu) or `model=/models/my-tts` (a folder saved
with save_pretrained: config.json, the weights, the tokenizer's vocab.json). The model is
loaded once per process and shared by every line and every backend that names it.

Two facts about VITS shape this module:
- it has no words-per-minute setting, only `speaking_rate` (1.0 = as trained, 2.0 = twice
  as fast). The narration stage asks for words per minute and paces lines relative to
  `rate`, so a requested rate is mapped through the model's natural rate
  (`natural_wpm`, declared: MMS-TTS English speaks about 150 words a minute):
  speaking_rate = rate / natural_wpm. Pacing at 1.3x the voice's rate is 1.3x faster speech.
- it samples noise (durations and the latent), so a line is spoken with a seed derived
  from the text and the `seed` option: the same line gives the same samples, in any
  order and in any process. The global torch generator is left as it was.

VITS gives no word timings (subtitles then split lines by their length).
torch and transformers are imported only when a line is spoken.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from storyflow.backends.base import Speech, SpeechBackend
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
from storyflow.core.errors import BackendOptionError, BackendUnavailableError, GenerationError

INSTALL = 'pip install "storyflow[transformers]"'


class VitsOptions(TorchOptions):
    speaking_rate: float = Field(default=1.0, gt=0.2, le=5.0, description="the voice's own pace: VITS "
                                 "speaking_rate (1.0 as trained, larger is faster)")  # fmt: skip
    natural_wpm: float = Field(default=150.0, ge=40.0, le=400.0, description="words per minute the model speaks at "
                               "speaking_rate 1 (MMS-TTS English: about 150); maps requested rates onto "
                               "speaking_rate")  # fmt: skip
    voice: str = Field(default="", description="speaker number of a multi-speaker model (e.g. 3); empty: the "
                       "model's first speaker")  # fmt: skip
    seed: int = Field(default=0, ge=0, description="mixed with each line's text into its noise seed")


class VitsSpeech(TorchModel, SpeechBackend):
    name = "vits"
    version = "1"
    description = "VITS / MMS-TTS text to speech run in-process with transformers (hub id or folder)"
    Options = VitsOptions
    requires = ("torch", "transformers")
    install = INSTALL

    options: VitsOptions

    @property
    def voice(self) -> str:
        return self.options.voice or "0"

    @property
    def rate(self) -> float:
        """Words per minute at the voice's own pace (declared, so no model is loaded to know it)."""
        return self.options.natural_wpm * self.options.speaking_rate

    def check(self) -> None:
        """The folder (or hub id) is there, and a speaker number names one of a local model's speakers."""
        source = model_source(self.options.model, self.kind, self.name)
        speaker = self._speaker()
        config = Path(source) / "config.json"
        if speaker is not None and config.is_file():
            speakers = int(json.loads(config.read_text(encoding="utf-8")).get("num_speakers", 1))
            _check_speaker(speaker, speakers, self.options.model)

    # ------------------------------------------------------------ loaded once

    def load(self) -> tuple[Any, Any]:
        """(tokenizer, model), loaded on first use in this process and kept warm."""
        key = self.warm_key()
        return WARM.get(key, lambda: self._load(key[3]))

    def _load(self, device: str) -> tuple[Any, Any]:
        from transformers import AutoConfig, AutoTokenizer, VitsModel
        quiet_libraries()
        options = self.options
        source = model_source(options.model, self.kind, self.name)
        with loading(f"the speech backend '{self.name}'", options.model, device):
            config = AutoConfig.from_pretrained(source, revision=options.revision)
            if config.model_type != "vits":  # another model's weights would load as random VITS ones
                raise BackendUnavailableError(
                    f"the speech backend '{self.name}': {options.model} holds a {config.model_type} model, not VITS",
                    fix="point --speech-option model=... at a VITS model, e.g. facebook/mms-tts-eng",
                )
            tokenizer = AutoTokenizer.from_pretrained(source, revision=options.revision)
            model = VitsModel.from_pretrained(source, revision=options.revision, config=config,
                                              dtype=resolve_dtype(options.dtype, device))  # fmt: skip
            model = model.to(device).eval()
        return tokenizer, model

    # ------------------------------------------------------------ speaking

    def speak(self, text: str, *, rate: float | None = None) -> Speech:
        """Speak one line: mono float32 at the model's sample rate (MMS-TTS: 16 kHz)."""
        import numpy as np
        import torch

        # 1. check inputs
        line = " ".join((text or "").split())
        if not line:
            raise GenerationError(
                "vits was asked to speak an empty narration line",
                fix="write the shot's narration in words, or leave the shot without narration",
            )
        wpm = self.rate if rate is None else float(rate)
        if wpm <= 0:
            raise BackendOptionError(f"vits cannot speak at {wpm:g} words per minute",
                                     fix="use a positive rate (speaking_rate= sets the voice's own pace)")  # fmt: skip
        speaking_rate = wpm / self.options.natural_wpm

        # 2. the model (loaded once) and the line as its tokens
        tokenizer, model = self.load()
        device = self.warm_key()[3]
        try:
            encoded = tokenizer(line, return_tensors="pt")
        except ImportError as exc:  # a non-Latin script needs uroman (or phonemizer) to be read
            raise GenerationError(f"vits cannot read {line[:40]!r}: {str(exc).strip().splitlines()[0][:200]}",
                                  fix="pip install uroman (for models that romanize their input), or write the "
                                  "line in the model's own language and script")  # fmt: skip
        tokens = int(encoded["input_ids"].shape[-1])
        readable = (tokens - 1) // 2 if getattr(tokenizer, "add_blank", False) else tokens  # blanks between characters
        if readable <= 0:
            raise GenerationError(f"the vits model {self.options.model} can read none of {line[:60]!r}",
                                  fix="write the narration in the model's language and script (MMS-TTS has one "
                                  "model per language: facebook/mms-tts-<code>)")  # fmt: skip
        speaker = self._speaker()
        if speaker is not None:
            _check_speaker(speaker, model.config.num_speakers, self.options.model)

        # 3. synthesise, with this line's own seed
        with on_device(device), running("vits narration", device), seeded(_line_seed(self.options.seed, line), device):
            with torch.inference_mode():
                output = model(**encoded.to(device), speaking_rate=speaking_rate, speaker_id=speaker)
        length = int(output.sequence_lengths[0])
        samples = output.waveform[0, :length].float().cpu().numpy()
        samples = np.clip(np.nan_to_num(samples), -1.0, 1.0).astype(np.float32)
        if not samples.size or not np.any(samples):
            raise GenerationError(f"the vits model {self.options.model} produced no sound for {line[:60]!r}",
                                  fix="check the model is a trained VITS checkpoint for this language")  # fmt: skip
        return Speech(samples=samples, sample_rate=int(model.config.sampling_rate))

    def _speaker(self) -> int | None:
        voice = self.options.voice.strip()
        if not voice:
            return None
        if not voice.isdigit():
            raise BackendOptionError(
                f"vits voices are speaker numbers, not '{voice}'",
                fix="pass voice= a speaker number of a multi-speaker VITS model (e.g. voice=3), or no voice",
            )
        return int(voice)


def _check_speaker(speaker: int, speakers: int, model: str) -> None:
    if speaker >= max(speakers, 1) or (speakers <= 1 and speaker > 0):
        raise BackendOptionError(
            f"the vits model {model} has {speakers} speaker(s); voice {speaker} is not one of them",
            fix=f"use voice= 0..{max(speakers, 1) - 1}" if speakers > 1 else "leave voice= empty: this model has "
            "one speaker",
        )


def _line_seed(seed: int, line: str) -> int:
    digest = hashlib.sha256(f"{seed}:{line}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63
