"""--music-backend musicgen: a tiny random MusicGen folder, loaded through the backend the way a user's is.

The tiny model (T5 text encoder, EnCodec codec at 16 kHz and 25 frames a second, a
one-layer decoder) plays noise, but a noise that depends on the words it is given, the
seed and the length, as a real checkpoint's music does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storyflow.backends.base import MusicCue
from storyflow.backends.registry import load_backend
from storyflow.backends.torch_models import WARM
from storyflow.core.errors import BackendOptionError, BackendUnavailableError
from storyflow.core.vocabulary import MOODS
from tests.tiny_sound import one_torch_thread, tiny_musicgen_folder

RATE = 48_000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def musicgen_folder() -> Path:
    return tiny_musicgen_folder()


def scorer(folder: Path | str, **options):
    """As the CLI builds it: --music-backend musicgen --music-option model=<folder> ..."""
    return load_backend("music", "musicgen", {"model": str(folder)} | options)


@pytest.fixture
def generations(monkeypatch):
    """The max_new_tokens of every MusicGen generation (the real model still runs)."""
    from transformers import MusicgenForConditionalGeneration

    asked: list[int] = []
    real = MusicgenForConditionalGeneration.generate

    def generate(self, *args, **kwargs):
        asked.append(kwargs["max_new_tokens"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MusicgenForConditionalGeneration, "generate", generate)
    return asked


def test_the_score_is_film_length_stereo_and_one_piece_per_mood_and_length(musicgen_folder, generations):
    music = scorer(musicgen_folder, crossfade_s=0.2)
    music.check_available()
    cues = [MusicCue(0.0, 1.0, "calm", "s01"), MusicCue(1.0, 2.0, "tense", "s02"), MusicCue(2.0, 3.0, "calm", "s03"),
            MusicCue(3.0, 4.01, "calm", "s04")]  # fmt: skip
    score = music.compose(cues, 4.01, seed=7, sample_rate=RATE)
    assert score.dtype == np.float32 and score.shape == (round(4.01 * RATE), 2)
    assert np.abs(score).max() == pytest.approx(10 ** (-14 / 20), rel=1e-3)  # level_db, the procedural score's too
    windows = score[: len(score) // 4800 * 4800].reshape(-1, 4800, 2)
    assert (np.sqrt((windows**2).mean(axis=(1, 2))) > 0.01).all(), "no silent stretch"
    # each cue plays 0.1 s past its inner ends (the crossfade): s01 and s04 are calm for 1.1 s (28 codec
    # frames at 25 a second), s02 and s03 last 1.2 s (30 frames); the decoder's codebook delay adds 3.
    # MusicGen is asked once for s01 and s04, which have the same mood and length.
    assert sorted(generations) == [28 + 3, 30 + 3, 30 + 3]


def test_the_music_changes_where_the_mood_does(musicgen_folder):
    music = scorer(musicgen_folder, crossfade_s=0.2)
    calm = music.compose([MusicCue(0, 1.5, "calm"), MusicCue(1.5, 3.0, "calm")], 3.0, seed=3, sample_rate=RATE)
    turn = music.compose([MusicCue(0, 1.5, "calm"), MusicCue(1.5, 3.0, "tense")], 3.0, seed=3, sample_rate=RATE)
    head, tail = slice(0, round(1.3 * RATE)), slice(round(1.7 * RATE), None)  # away from the crossfade
    scale = np.abs(turn[head]).max() / np.abs(calm[head]).max()  # each score is brought to the same peak
    assert np.allclose(turn[head], calm[head] * scale, atol=1e-4), "the first shot's music is the same"
    assert not np.allclose(turn[tail], calm[tail] * scale, atol=1e-2), "the second shot's is another"


def test_the_same_seed_gives_the_same_score(musicgen_folder):
    music = scorer(musicgen_folder)
    cues = [MusicCue(0, 1.2, "joyful"), MusicCue(1.2, 2.0, "eerie")]
    first = music.compose(cues, 2.0, seed=11, sample_rate=RATE)
    assert np.array_equal(scorer(musicgen_folder).compose(cues, 2.0, seed=11, sample_rate=RATE), first)
    assert not np.allclose(music.compose(cues, 2.0, seed=12, sample_rate=RATE), first, atol=1e-3)


def test_a_long_cue_loops_a_piece_no_longer_than_the_cap(musicgen_folder, generations):
    music = scorer(musicgen_folder, max_seconds_per_cue=0.6, guidance=1.0)
    score = music.compose([MusicCue(0, 2.5, "romantic")], 2.5, seed=1, sample_rate=44_100)
    assert generations == [15 + 3]  # 0.6 s at 25 frames a second
    assert score.shape == (round(2.5 * 44_100), 2)
    tail = score[-4410:]
    assert np.sqrt((tail**2).mean()) > 0.01, "the loop fills the cue to its end"


def test_the_model_is_loaded_once_for_every_score(musicgen_folder):
    scores = [scorer(musicgen_folder, device="cpu", dtype="float32"), scorer(musicgen_folder, dtype="float32")]
    for music in scores:
        music.compose([MusicCue(0, 0.5, "playful")], 0.5, seed=1, sample_rate=RATE)
    key = scores[0].warm_key()
    assert key == scores[1].warm_key() and WARM.loads[key] == 1
    assert scores[0].identity()["model"] == str(musicgen_folder)
    assert scorer("facebook/musicgen-small", revision="abc123").model_ref == "facebook/musicgen-small@abc123"


def test_every_mood_has_a_description_and_style_is_added(musicgen_folder):
    music = scorer(musicgen_folder, style="lo-fi, 90 bpm")
    assert all(music.describe(mood).startswith(mood) or mood in music.describe(mood) for mood in MOODS)
    assert music.describe("calm").endswith(", lo-fi, 90 bpm")
    assert len({music.describe(mood) for mood in MOODS}) == len(MOODS)


def test_a_missing_folder_and_unknown_options_are_refused(tmp_path, musicgen_folder):
    with pytest.raises(BackendUnavailableError) as caught:
        scorer(tmp_path / "no-such-model").check_available()
    assert str(tmp_path / "no-such-model") in caught.value.message
    assert "--music-option model=" in caught.value.fix
    with pytest.raises(BackendOptionError) as refused:
        scorer(musicgen_folder, guidance_scale=3)
    assert "unknown option 'guidance_scale'" in refused.value.message
    assert "guidance" in refused.value.fix and "max_seconds_per_cue" in refused.value.fix


def test_a_folder_of_another_kind_of_model_is_named_not_loaded_as_random_musicgen():
    from tests.tiny_sound import tiny_vits_folder

    with pytest.raises(BackendUnavailableError, match="holds a vits model, not MusicGen") as caught:
        scorer(tiny_vits_folder()).compose([MusicCue(0, 1, "calm")], 1.0, seed=1, sample_rate=RATE)
    assert "facebook/musicgen-small" in caught.value.fix
