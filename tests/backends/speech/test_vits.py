"""--speech-backend vits: a tiny random VITS folder, loaded through the backend the way a user's is.

The tiny model's duration predictor gives every character about six frames, so its
speech grows with the text and shrinks with the speaking rate as a trained voice's does;
what it says is noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storyflow.backends.registry import load_backend
from storyflow.backends.torch_models import WARM
from storyflow.core.errors import BackendOptionError, BackendUnavailableError, GenerationError
from tests.tiny_sound import one_torch_thread, tiny_vits_folder

LINE = "The gull glides over the harbour at dawn."


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def vits_folder() -> Path:
    return tiny_vits_folder()


def narrator(folder: Path | str, **options):
    """As the CLI builds it: --speech-backend vits --speech-option model=<folder> ..."""
    return load_backend("speech", "vits", {"model": str(folder)} | options)


def test_speech_is_mono_float32_and_grows_with_the_text(vits_folder):
    speech = narrator(vits_folder)
    speech.check_available()
    short, long = speech.speak("The gull."), speech.speak(LINE)
    for spoken in (short, long):
        assert spoken.samples.dtype == np.float32 and spoken.samples.ndim == 1
        assert spoken.sample_rate == 16_000
        assert np.abs(spoken.samples).max() <= 1.0
        assert np.sqrt(np.mean(spoken.samples**2)) > 0.01, "not silent"
    assert long.seconds > 2 * short.seconds
    assert long.words == ()  # VITS gives no word timings: subtitles split the line by length


def test_a_faster_rate_speaks_the_line_in_less_time(vits_folder):
    speech = narrator(vits_folder)
    assert speech.rate == 150.0  # words per minute at the model's own pace (natural_wpm x speaking_rate)
    plain = speech.speak(LINE)
    paced = speech.speak(LINE, rate=speech.rate * 1.3)  # what the narration stage's "pace" fit asks for
    assert paced.seconds < 0.9 * plain.seconds
    slower = narrator(vits_folder, speaking_rate=0.5)
    assert slower.rate == 75.0
    assert slower.speak(LINE).seconds > 1.5 * plain.seconds


def test_the_same_line_gives_the_same_samples_and_leaves_torch_alone(vits_folder):
    import torch

    speech = narrator(vits_folder)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    first = speech.speak(LINE)
    assert torch.equal(torch.rand(3), expected), "the global generator goes on as if nothing had been drawn"
    speech.speak("Something else first.")
    assert np.array_equal(speech.speak(LINE).samples, first.samples)
    assert not np.array_equal(narrator(vits_folder, seed=1).speak(LINE).samples, first.samples)


def test_the_model_is_loaded_once_for_every_narrator_and_line(vits_folder):
    narrators = [narrator(vits_folder, dtype="float32", device="cpu"), narrator(vits_folder, dtype="float32")]
    for speech in narrators:
        speech.speak("One line.")
        speech.speak("Another line.")
    key = narrators[0].warm_key()
    assert key == narrators[1].warm_key() and str(vits_folder) in key
    assert WARM.loads[key] == 1
    assert narrators[0].identity()["model"] == str(vits_folder) and narrators[0].model_ref == str(vits_folder)
    assert narrator(vits_folder, revision="v2").model_ref == f"{vits_folder}@v2"


def test_a_missing_or_empty_folder_is_refused_before_any_work(tmp_path):
    with pytest.raises(BackendUnavailableError) as caught:
        narrator(tmp_path / "no-such-voice").check_available()
    assert str(tmp_path / "no-such-voice") in caught.value.message and "model=" in caught.value.fix
    with pytest.raises(BackendUnavailableError, match="no model"):
        narrator(tmp_path).check_available()


def test_options_are_checked(vits_folder):
    with pytest.raises(BackendOptionError) as caught:
        narrator(vits_folder, speed=2)
    assert "unknown option 'speed'" in caught.value.message
    assert "speaking_rate" in caught.value.fix and "natural_wpm" in caught.value.fix
    with pytest.raises(BackendOptionError, match="'model'"):
        load_backend("speech", "vits", {})
    # --voice goes to the speech backend: VITS voices are speaker numbers of multi-speaker models
    with pytest.raises(BackendOptionError, match="speaker numbers"):
        narrator(vits_folder, voice="en-gb").check_available()
    with pytest.raises(BackendOptionError, match="1 speaker"):
        narrator(vits_folder, voice="3").check_available()


def test_a_line_the_model_cannot_read_is_an_error_that_says_so(vits_folder):
    with pytest.raises(GenerationError, match="can read none of") as caught:
        narrator(vits_folder).speak("1984 ¿¡")
    assert "language" in caught.value.fix


def test_a_folder_of_another_kind_of_model_is_named_not_loaded_as_random_vits(tmp_path):
    from transformers import T5Config

    T5Config(d_model=8, d_ff=16, num_layers=1, num_heads=1).save_pretrained(tmp_path)
    with pytest.raises(BackendUnavailableError, match="holds a t5 model, not VITS") as caught:
        narrator(tmp_path).speak("Hello.")
    assert "facebook/mms-tts-eng" in caught.value.fix
