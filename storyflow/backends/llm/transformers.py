"""The transformers LLM backend: plans and prompts from an open chat model run in this process.

`--llm transformers --llm-option model=Qwen/Qwen2.5-7B-Instruct` (a hub id) or
`model=/models/my-llm` (a folder holding config.json, the weights and the tokenizer).
The model is loaded once per process, whatever the number of backends asking for it, and
talked to through its tokenizer's chat template (a plain System/User/Assistant transcript
when it has none). Temperature 0 is greedy decoding. torch and transformers are imported
only when a model is loaded, so the command line stays fast without them.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from storyflow.backends.base import LLMTask
from storyflow.backends.chat import ChatLLM, ChatOptions, Reply
from storyflow.core.errors import BackendUnavailableError, GenerationError

DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
MODEL_FIX = "pass --llm-option model=<hub id or local folder>, e.g. model=Qwen/Qwen2.5-7B-Instruct"


class TransformersOptions(ChatOptions):
    model: str = Field(default="", validate_default=True, description="hub id or local folder (required)")
    revision: str | None = Field(default=None, description="hub branch, tag or commit")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N or mps")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(default="auto", description="weights' type")
    max_new_tokens: int = Field(default=1024, gt=0, description="most tokens per answer")
    max_tokens: int | None = Field(default=None, gt=0, description="the same as max_new_tokens, and wins over it")

    @field_validator("model")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"required: {MODEL_FIX}")
        return value.strip()

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE.fullmatch(value):
            raise ValueError(f"'{value}' is not a device: use auto, cpu, cuda, cuda:N or mps")
        return value


@dataclass
class Loaded:
    """A model and its tokenizer in memory, with the lock that makes its generations one at a time."""

    tokenizer: Any
    model: Any
    device: str
    lock: threading.Lock = field(default_factory=threading.Lock)


# One copy of each model per process: (model, revision, device, dtype) -> Loaded.
_LOADED: dict[tuple[str, str | None, str, str], Loaded] = {}
_LOADING = threading.Lock()


class TransformersBackend(ChatLLM):
    name = "transformers"
    description = "an open chat model (hub id or folder) run in-process with transformers"
    Options = TransformersOptions
    requires = ("torch", "transformers")
    install = 'pip install "storyflow[transformers]"'
    operational = ChatLLM.operational | {"device"}

    options: TransformersOptions

    @property
    def revision(self) -> str:
        return self.options.revision or ""

    @property
    def folder(self) -> Path | None:
        """The model's folder when `model` names one (a path, or an existing directory); None for a hub id."""
        model = self.options.model
        path = Path(model).expanduser()
        return path if model.startswith(("/", ".", "~")) or path.is_dir() else None

    def check(self) -> None:
        folder = self.folder
        if folder is not None and not (folder / "config.json").is_file():
            what = "is not a folder" if not folder.is_dir() else "holds no config.json"
            raise BackendUnavailableError(
                f"the llm backend 'transformers' cannot load the model folder {folder}: it {what}",
                fix="point --llm-option model=... at a folder saved with save_pretrained (config.json, weights, "
                "tokenizer), or at a hub id such as Qwen/Qwen2.5-7B-Instruct",
            )

    # ------------------------------------------------------------ loading, once per process

    def load(self) -> Loaded:
        """The model and tokenizer, loaded on first use and shared by every backend that names them."""
        options = self.options
        key = (options.model, options.revision, options.device, options.dtype)
        with _LOADING:
            if key not in _LOADED:
                self.check()
                _LOADED[key] = self._load()
            return _LOADED[key]

    def _load(self) -> Loaded:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        # storyflow reports what it does itself: no progress bars or notices from transformers on the terminal
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()

        options = self.options
        device = _device(options.device)
        source = str(self.folder) if self.folder is not None else options.model
        dtype = "auto" if options.dtype == "auto" else getattr(torch, options.dtype)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, revision=options.revision)
            model = AutoModelForCausalLM.from_pretrained(source, revision=options.revision, dtype=dtype,
                                                         device_map=device)  # fmt: skip
        except torch.OutOfMemoryError:
            raise BackendUnavailableError(
                f"the model {options.model} does not fit in memory on {device}",
                fix="pick a smaller model, --llm-option dtype=bfloat16, or another --llm-option device=...",
            ) from None
        except (OSError, ValueError, KeyError) as exc:  # not found (offline, misspelt, gated), not a causal LM
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendUnavailableError(
                f"the llm backend 'transformers' cannot load the model {options.model}"
                f"{'@' + options.revision if options.revision else ''}: {first}",
                fix="check the hub id and revision (a gated model needs HF_TOKEN in the environment; without a "
                f"network, download it first), or point it at a local folder; {MODEL_FIX}",
            ) from None
        model.eval()
        return Loaded(tokenizer=tokenizer, model=model, device=device)

    # ------------------------------------------------------------ asking

    def complete(self, messages: list[dict[str, str]], task: LLMTask) -> Reply:
        import torch

        loaded = self.load()
        tokenizer, model = loaded.tokenizer, loaded.model
        options = self.options
        encoded = _encode(tokenizer, messages)
        inputs = {name: value.to(model.device) for name, value in encoded.items()}
        prompt_tokens = int(inputs["input_ids"].shape[1])
        limit = options.max_tokens or options.max_new_tokens
        sampling: dict[str, Any] = {"do_sample": False}
        if options.temperature > 0:
            sampling = {"do_sample": True, "temperature": options.temperature}
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        try:
            with loaded.lock, torch.inference_mode():
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                output = model.generate(**inputs, max_new_tokens=limit, pad_token_id=pad, **sampling)
        except torch.OutOfMemoryError:
            raise GenerationError(
                f"transformers model {self.model_ref} ran out of memory on {loaded.device} "
                f"({prompt_tokens} prompt tokens)",
                fix="lower --llm-option max_new_tokens=..., use a smaller model or --llm-option dtype=bfloat16",
            ) from None
        except RuntimeError as exc:  # a device or kernel failure: torch says what, in one line
            raise GenerationError(
                f"transformers model {self.model_ref} failed on {loaded.device}: {str(exc).strip().splitlines()[0]}",
                fix="try --llm-option device=cpu, or --llm-option dtype=float32",
            ) from None
        new = output[0, prompt_tokens:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        ended = tokenizer.eos_token_id is not None and bool((new == tokenizer.eos_token_id).any())
        return Reply(text=text, prompt_tokens=prompt_tokens, completion_tokens=int(new.shape[0]),
                     truncated=not ended and int(new.shape[0]) >= limit)  # fmt: skip


def _encode(tokenizer: Any, messages: list[dict[str, str]]) -> Any:
    """The conversation as model input: through the chat template, else as a plain transcript."""
    if not getattr(tokenizer, "chat_template", None):
        return tokenizer(_transcript(messages), return_tensors="pt")
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                             return_dict=True)  # fmt: skip
    except TemplateError:  # some templates (Gemma's) refuse a system turn: it opens the first user turn instead
        system, first, *rest = messages
        merged = {"role": "user", "content": f"{system['content']}\n\n{first['content']}"}
        return tokenizer.apply_chat_template([merged, *rest], add_generation_prompt=True, return_tensors="pt",
                                             return_dict=True)  # fmt: skip


def _device(choice: str) -> str:
    """The device `auto` means here: cuda when there is one, else mps, else cpu; others as given."""
    import torch

    if choice != "auto":
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"device {choice} was asked for, and torch sees no CUDA device here",
                                          fix="use --llm-option device=auto (or cpu)")  # fmt: skip
        return choice
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _transcript(messages: list[dict[str, str]]) -> str:
    """A prompt for a model without a chat template: System:/User:/Assistant: turns, ending on Assistant:."""
    turns = [f"{message['role'].capitalize()}: {message['content']}" for message in messages]
    return "\n\n".join(turns) + "\n\nAssistant:"
