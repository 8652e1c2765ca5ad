"""A Hugging Face transformers audio-language model behind predictions_v1.

Used by the af-next kit and by the hf_transformers template. The model is loaded the way a
model card shows it: AutoProcessor.from_pretrained(repo) and the model class the checkpoint's
config.json names in "architectures" (or the one given with --model-class). A request item
becomes one chat conversation: each message's text is split at the audio placeholders and an
{"type": "audio"} part stands for each clip; the processor's chat template renders it, and the
processor gets the clips (mono float32, resampled to its feature extractor's rate, cut or
zero-padded to the cap).

Everything model-specific is a method of TransformersAudioModel that a kit may override:
conversation() (the prompt), processor_inputs() (how text and audio go into the processor),
generate_kwargs() (decoding). Heavy imports (torch, transformers) happen in load() only.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import predictions_server as ps

log = logging.getLogger("transformers_model")


class TransformersAudioModel:
    def __init__(self, kit: str, args: argparse.Namespace):
        self.kit = kit
        self.args = args
        self.revision = args.revision
        self.model = None
        self.processor = None
        self.sample_rate = args.sample_rate or 16000

    # -- identity ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {"model": self.args.model_id, "model_revision": self.revision, "stub": False,
                "generation": generation_extra(self.args)}

    # -- loading ----------------------------------------------------------------------------

    def load(self) -> None:
        import torch  # noqa: PLC0415
        import transformers  # noqa: PLC0415

        self.torch = torch
        token = os.environ.get("HF_TOKEN") or None
        kw = {"revision": self.args.revision, "token": token, "trust_remote_code": self.args.trust_remote_code}
        self.processor = transformers.AutoProcessor.from_pretrained(self.args.model_id, **kw)
        cls_name = self.args.model_class
        if not cls_name or cls_name == "auto":
            config = transformers.AutoConfig.from_pretrained(self.args.model_id, **kw)
            names = getattr(config, "architectures", None) or []
            if not names:
                raise RuntimeError(f"{self.args.model_id}: config.json names no architecture; give --model-class")
            cls_name = names[0]
        cls = getattr(transformers, cls_name, None)
        if cls is None:
            raise RuntimeError(f"transformers {transformers.__version__} has no class {cls_name}: "
                               "install the version the model card asks for (requirements.txt), or give --model-class")
        dtype = getattr(torch, self.args.dtype)
        log.info("loading %s@%s as %s (%s)", self.args.model_id, self.args.revision, cls_name, self.args.dtype)
        self.model = cls.from_pretrained(self.args.model_id, torch_dtype=dtype, device_map=self.args.device_map, **kw).eval()
        fe = getattr(self.processor, "feature_extractor", None)
        if not self.args.sample_rate and fe is not None and getattr(fe, "sampling_rate", None):
            self.sample_rate = int(fe.sampling_rate)
        try:
            from huggingface_hub import HfApi  # noqa: PLC0415

            self.revision = HfApi().model_info(self.args.model_id, revision=self.args.revision, token=token).sha
        except Exception as e:  # noqa: BLE001 (offline nodes: keep the requested revision)
            log.warning("could not resolve %s@%s to a commit: %s", self.args.model_id, self.args.revision, e)

    # -- per item ---------------------------------------------------------------------------

    def conversation(self, item: ps.Item) -> list[dict[str, Any]]:
        """The item's messages in the transformers multimodal chat format."""
        conv = []
        for m in item.messages:
            parts: list[dict[str, Any]] = []
            pieces = m["content"].split(ps.AUDIO_PLACEHOLDER)
            for j, text in enumerate(pieces):
                if j > 0:
                    parts.append({"type": "audio"})
                if text.strip():
                    parts.append({"type": "text", "text": text.strip()})
            conv.append({"role": m["role"], "content": parts})
        return conv

    def clip(self, audio: ps.Audio, cap: float):
        """Mono float32 numpy at the processor's rate, cut or zero-padded to cap seconds."""
        import numpy as np  # noqa: PLC0415

        x = audio.numpy()
        if audio.sample_rate != self.sample_rate:
            import torchaudio  # noqa: PLC0415

            x = torchaudio.functional.resample(self.torch.from_numpy(x), audio.sample_rate, self.sample_rate).numpy()
        n = int(round(cap * self.sample_rate))
        x = x[:n]
        if len(x) < n and self.args.pad_audio:
            x = np.pad(x, (0, n - len(x)))
        return x.astype(np.float32)

    def processor_inputs(self, prompts: list[str], audios: list[Any]):
        kw: dict[str, Any] = {"text": prompts, "return_tensors": "pt", "padding": True}
        if audios:
            kw["audio"] = audios
            kw["sampling_rate"] = self.sample_rate
        return self.processor(**kw)

    def generate_kwargs(self, item: ps.Item) -> dict[str, Any]:
        temp = float(item.temperature or 0.0)
        max_new = self.args.max_new_tokens
        if item.max_tokens:
            max_new = min(max_new, item.max_tokens)
        kw: dict[str, Any] = {"max_new_tokens": max_new, "num_beams": self.args.num_beams, "do_sample": temp > 0}
        if temp > 0:
            kw["temperature"] = temp
        return kw

    # -- batch ------------------------------------------------------------------------------

    def predict(self, items: list[ps.Item]) -> list[ps.Answer | str | BaseException]:
        out: list[Any] = [None] * len(items)
        groups: dict[tuple, list[int]] = {}
        for k, it in enumerate(items):
            key = (float(it.max_length_seconds or self.args.default_max_length_seconds),
                   tuple(sorted(self.generate_kwargs(it).items())), bool(it.audio))
            groups.setdefault(key, []).append(k)
        for (cap, gen, _), idx in groups.items():
            try:
                answers = self._generate([items[k] for k in idx], cap, dict(gen))
            except Exception as e:  # noqa: BLE001 (this group's items fail, the others go on)
                log.exception("generation failed for %d item(s)", len(idx))
                answers = [e] * len(idx)
            for k, a in zip(idx, answers):
                out[k] = a
        return out

    def _generate(self, group: list[ps.Item], cap: float, gen: dict[str, Any]) -> list[ps.Answer]:
        torch = self.torch
        prompts = [self.processor.apply_chat_template(self.conversation(it), tokenize=False, add_generation_prompt=True)
                   for it in group]
        audios = [self.clip(a, cap) for it in group for a in it.audio]
        inputs = self.processor_inputs(prompts, audios).to(self.model.device)
        if "input_features" in inputs and hasattr(self.model, "dtype"):
            inputs["input_features"] = inputs["input_features"].to(self.model.dtype)
        with torch.inference_mode():
            seq = self.model.generate(**inputs, **gen)
        n_in = inputs["input_ids"].shape[1]
        new = seq[:, n_in:]
        texts = self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        pad = getattr(self.processor.tokenizer, "pad_token_id", None)
        answers = []
        for row, text, mask in zip(new, texts, inputs["attention_mask"]):
            n_out = int((row != pad).sum()) if pad is not None else int(row.shape[0])
            answers.append(ps.Answer(text.strip(), "length" if n_out >= gen["max_new_tokens"] else "stop",
                                     int(mask.sum()), n_out))
        return answers


def generation_extra(args: argparse.Namespace) -> dict[str, Any]:
    return {"default_max_length_seconds": args.default_max_length_seconds, "num_beams": args.num_beams,
            "max_new_tokens": args.max_new_tokens, "pad_audio": args.pad_audio}


def add_arguments(g: argparse._ArgumentGroup, *, model_id: str, env_prefix: str, cap_seconds: float,
                  max_new_tokens: int, model_class: str = "auto") -> None:
    """The model arguments of a transformers kit; defaults from $<env_prefix>_MODEL_ID and
    $<env_prefix>_MODEL_REVISION when set."""
    g.add_argument("--model-id", default=os.environ.get(f"{env_prefix}_MODEL_ID", model_id),
                   help=f"Hugging Face repo of the model [${env_prefix}_MODEL_ID]")
    g.add_argument("--revision", default=os.environ.get(f"{env_prefix}_MODEL_REVISION", "main"),
                   help=f"revision of --model-id [${env_prefix}_MODEL_REVISION]")
    g.add_argument("--model-class", default=model_class,
                   help="transformers class to load; 'auto' takes the one config.json names in architectures")
    g.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    g.add_argument("--device-map", default="auto", help="passed to from_pretrained")
    g.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repo")
    g.add_argument("--sample-rate", type=int, default=0, help="audio rate for the processor (default: its own)")
    g.add_argument("--default-max-length-seconds", type=float, default=cap_seconds,
                   help="audio cap when generation_config has no max_length_seconds")
    g.add_argument("--pad-audio", action=argparse.BooleanOptionalAction, default=False,
                   help="zero-pad clips shorter than the cap")
    g.add_argument("--num-beams", type=int, default=1)
    g.add_argument("--max-new-tokens", type=int, default=max_new_tokens,
                   help="most new tokens (generation_config.max_tokens may lower it)")
