"""--llm transformers: a tiny random chat model saved to a folder, loaded the way a user's folder is.

The model is a one-layer Qwen2 with a BPE tokenizer trained here on three sentences: its
answers are garbage, which is what the repair loop and the final error are tested with.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storyflow.backends.base import LLMTask
from storyflow.backends.registry import load_backend
from storyflow.core.errors import BackendOptionError, BackendUnavailableError, LLMOutputError
from storyflow.core.models import PromptAnswer
from storyflow.core.templates import PromptFolder
from tests.tiny_models import build_tiny_chat_model

# tiny models: one torch thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A tiny random causal LM and its tokenizer, saved with save_pretrained (about 100 KB)."""
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-llm"))


def task() -> LLMTask:
    return LLMTask(instructions="Write a video prompt for the shot. Answer with JSON.", answer=PromptAnswer,
                   templates=PromptFolder(), question='{"action": "a gull glides over the harbour"}')  # fmt: skip


def backend(folder: Path | str, **options):
    """As the CLI builds it: --llm transformers --llm-option model=<folder> ..."""
    return load_backend("llm", "transformers", {"model": str(folder), "max_new_tokens": 8} | options)


def test_garbage_answers_go_through_every_repair_then_the_error_names_the_folder(model_folder):
    llm = backend(model_folder, repairs=2)
    llm.check_available()
    asked = task()
    with pytest.raises(LLMOutputError) as caught:
        llm.rewrite(None, None, asked)
    assert f"transformers model {model_folder} answered 3 times without a valid shot prompt" in caught.value.message
    assert "--llm embedded" in caught.value.fix
    [usage] = asked.usage
    assert (usage.model, usage.calls, usage.repairs) == (str(model_folder), 3, 2)
    assert usage.completion_tokens <= 3 * 8 and usage.prompt_tokens > 0 and usage.cost_usd is None


def test_the_model_is_loaded_once_for_every_backend_and_task(model_folder, monkeypatch):
    import transformers

    loads = []
    real = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def counted(cls, *args, **kwargs):
        loads.append(args[0])
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", classmethod(counted))
    options = {"device": "cpu", "dtype": "float32", "repairs": 0}  # a key no other test loads
    for llm in (backend(model_folder, **options), backend(model_folder, **options)):
        for _ in range(2):
            with pytest.raises(LLMOutputError):
                llm.answer(task())
    assert loads == [str(model_folder)]


def test_the_same_seed_gives_the_same_sampled_answer(model_folder):
    llm = backend(model_folder, temperature=1.0, seed=7)
    messages = [{"role": "system", "content": "Answer with JSON."}, {"role": "user", "content": "a gull"}]
    first, again = llm.complete(messages, task()), llm.complete(messages, task())
    assert first.text == again.text and first.completion_tokens == again.completion_tokens <= 8
    assert first.prompt_tokens > 0


def test_a_tokenizer_without_a_chat_template_gets_a_plain_transcript(model_folder, tmp_path):
    plain = tmp_path / "plain-llm"
    shutil.copytree(model_folder, plain)
    (plain / "chat_template.jinja").unlink()
    llm = backend(plain, repairs=0)
    with pytest.raises(LLMOutputError):
        llm.answer(task())
    assert llm.load().tokenizer.chat_template is None


def test_a_missing_folder_is_named_before_any_work(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(BackendUnavailableError) as caught:
        backend(missing).check_available()
    assert str(missing) in caught.value.message and "not a folder" in caught.value.message
    assert "--llm-option model=" in caught.value.fix
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendUnavailableError, match="holds no config.json"):
        backend(tmp_path / "empty").check_available()


def test_options_are_checked_as_the_command_line_passes_them(model_folder):
    with pytest.raises(BackendOptionError) as caught:
        load_backend("llm", "transformers", {})
    assert "option 'model'" in caught.value.message and "--llm-option model=" in caught.value.message
    with pytest.raises(BackendOptionError, match="option 'device'.*'gpu' is not a device"):
        backend(model_folder, device="gpu")
    with pytest.raises(BackendOptionError, match="option 'dtype'"):
        backend(model_folder, dtype="int4")
    for device in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert backend(model_folder, device=device).options.device == device
    pinned = backend("Qwen/Qwen2.5-0.5B-Instruct", revision="a1b2c3")
    assert pinned.model_ref == "Qwen/Qwen2.5-0.5B-Instruct@a1b2c3" and pinned.folder is None
