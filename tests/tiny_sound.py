"""Tiny random sound models the tests build offline and save to a folder, loaded back the way a user's are.

`build_tiny_vits(folder)`: a VITS text-to-speech model (the MMS-TTS layout) with a
character tokenizer; `build_tiny_musicgen(folder)`: a MusicGen model (T5 text encoder,
EnCodec audio codec, decoder) with a T5 tokenizer trained here and an EnCodec feature
extractor, saved as a MusicgenProcessor. Weights are random, so what they say or play is
noise, but shapes, lengths, rates, seeds and loading behave as a real checkpoint's do.
Each build takes about a second (after importing transformers) and writes under 400 KB;
build once per session: `tiny_vits_folder()` / `tiny_musicgen_folder()` cache the folder
per process (removed at exit).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

# MMS-TTS English reads lower-case letters, a few signs and spaces, each as one token.
VITS_CHARACTERS = list("abcdefghijklmnopqrstuvwxyz '-")
TINY_VITS_FRAMES_PER_CHARACTER = 6.0  # what the tiny duration predictor says for every character
TEXTS = [  # what the tiny T5 tokenizer is trained on: the kind of text MusicGen is asked for
    "calm ambient piano with soft pads, slow and gentle",
    "tense pulsing strings, low drones and ticking percussion",
    "joyful bright acoustic guitar and claps, upbeat folk",
    "melancholy solo cello and sparse piano, minor key",
    "mysterious dark synth textures and distant bells",
    "triumphant orchestral brass and timpani, heroic fanfare",
    "eerie detuned music box, whispering ambient noise",
    "romantic warm strings and harp, tender waltz",
    "playful pizzicato strings and xylophone, bouncy",
]


def build_tiny_vits(folder: Path) -> Path:
    """A tiny random VitsModel (16 kHz, about 100 KB) and a VitsTokenizer reading single characters.

    Its duration predictor is deterministic and gives every character about
    TINY_VITS_FRAMES_PER_CHARACTER frames (256 samples each), so speech grows with the text
    and shrinks with the speaking rate as a trained model's does.
    """
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    _quiet()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, **{c: i + 1 for i, c in enumerate(VITS_CHARACTERS)}}
    vocab_file = folder / "vocab.json"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = VitsTokenizer(str(vocab_file), pad_token="<pad>", unk_token="<pad>", add_blank=True, normalize=True,
                              phonemize=False, is_uroman=False)  # fmt: skip
    config = VitsConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        ffn_dim=32, flow_size=8, spectrogram_bins=9, upsample_initial_channel=16,
                        upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8], resblock_kernel_sizes=[3],
                        resblock_dilation_sizes=[[1, 3]], duration_predictor_filter_channels=16,
                        use_stochastic_duration_prediction=False, prior_encoder_num_flows=1,
                        prior_encoder_num_wavenet_layers=1, posterior_encoder_num_wavenet_layers=1,
                        depth_separable_num_layers=1, sampling_rate=16_000, layerdrop=0.0,
                        pad_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    model = VitsModel(config)
    with torch.no_grad():  # a duration predictor that says "about 6 frames" for each character
        projection = model.duration_predictor.proj
        projection.weight.zero_()
        projection.bias.fill_(float(torch.log(torch.tensor(TINY_VITS_FRAMES_PER_CHARACTER))))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_musicgen(folder: Path) -> Path:
    """A tiny random MusicgenForConditionalGeneration (mono, 16 kHz, 25 codec frames a second, about 300 KB)
    with a T5 tokenizer trained here on mood descriptions and an EnCodec feature extractor,
    saved together as a MusicgenProcessor."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
        T5Tokenizer,
    )

    _quiet()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # 1. a T5 (Unigram) tokenizer trained on a few descriptions: <pad>=0, </s>=1, <unk>=2
    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    unigram.train_from_iterator(TEXTS, trainer)
    pieces = [(piece, score) for piece, score in json.loads(unigram.to_str())["model"]["vocab"]]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)

    # 2. the three parts: text encoder, audio codec (codes 0..63), decoder over 4 codebooks
    codebook_size, codebooks = 64, 4
    text_encoder = T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                            relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                            decoder_start_token_id=0)  # fmt: skip
    audio_encoder = EncodecConfig(sampling_rate=16_000, hidden_size=16, num_filters=4, num_residual_layers=1,
                                  upsampling_ratios=[8, 8, 10], codebook_size=codebook_size, num_lstm_layers=1,
                                  # 25 frames a second (16000 / 640); 0.6 kbps at 6 bits a code: 4 codebooks
                                  target_bandwidths=[0.6])  # fmt: skip
    decoder = MusicgenDecoderConfig(vocab_size=codebook_size, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, ffn_dim=32, num_codebooks=codebooks,
                                    max_position_embeddings=1024, pad_token_id=codebook_size,
                                    bos_token_id=codebook_size, audio_channels=1,
                                    initializer_factor=0.5)  # fmt: skip
    config = MusicgenConfig(text_encoder=text_encoder, audio_encoder=audio_encoder, decoder=decoder)
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(config)
    with torch.no_grad():  # a fresh EnCodec's codebooks are all zeros: every code would sound the same
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_(std=10.0)
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    model.generation_config.decoder_start_token_id = codebook_size
    model.generation_config.pad_token_id = codebook_size
    model.generation_config.do_sample = True
    model.generation_config.guidance_scale = 3.0
    model.generation_config.max_length = 1024
    model.save_pretrained(folder)

    # 3. the processor a user's folder has: tokenizer + feature extractor
    features = EncodecFeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0)
    MusicgenProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _quiet() -> None:
    """No progress bars, and no warning that the decoder's pad/bos id (= codebook size) is past its vocabulary:
    that is MusicGen's own layout (musicgen-small: 2048 codes, pad 2048)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


@cache
def tiny_vits_folder() -> Path:
    """One tiny VITS folder per test process (built on first call, removed at exit)."""
    return build_tiny_vits(_temporary_folder("tiny-vits-"))


@cache
def tiny_musicgen_folder() -> Path:
    """One tiny MusicGen folder per test process (built on first call, removed at exit)."""
    return build_tiny_musicgen(_temporary_folder("tiny-musicgen-"))


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run tiny models on one thread, then restore torch's setting. Their operations are so small that
    a thread pool only waits: on a shared two-core machine one thread was 3-10x faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _temporary_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
