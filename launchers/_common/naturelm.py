"""NatureLM-audio model for the naturelm-v1.0 and naturelm-v1.1 kits.

Real mode follows the published BEANS-Zero inference recipe of NatureLM-audio: mono audio
resampled to 16 kHz, cut or zero-padded to the cap (generation_config.max_length_seconds, else
10 s) and clamped to [-1, 1]; the prompt in the Llama-3.1 chat template; beam search with 2
beams; at most 300 new tokens; sampling only when the request asks for a temperature > 0.

Heavy imports (torch, torchaudio, NatureLM, huggingface_hub, gcsfs / google-cloud-storage)
happen in load() and never at module level, so that stub mode runs on a bare Python.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from typing import Any

import predictions_server as ps

log = logging.getLogger("naturelm")

SAMPLE_RATE = 16000
DEFAULT_CAP_SECONDS = 10.0
NUM_BEAMS = 2
MAX_NEW_TOKENS = 300
RECIPE_TEMPERATURE = 0.1  # the recipe's value; unused while do_sample is false
CHECKPOINT_ENV = "NATURELM_GCS_CHECKPOINT_URI"


def recipe(args: argparse.Namespace) -> dict[str, Any]:
    return {"sample_rate": SAMPLE_RATE, "default_max_length_seconds": args.default_max_length_seconds,
            "chat_template": "llama-3.1", "num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens,
            "honour_max_tokens": args.honour_max_tokens}


def render_llama31(messages: list[dict[str, str]]) -> str:
    """The Llama-3.1 chat template as NatureLM-audio's processor writes it (the model adds the
    begin-of-text token itself). A single user message renders exactly like the recipe's
    prompt_template."""
    parts = [f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>" for m in messages]
    parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)


def hf_token() -> str | None:
    """HF_TOKEN, else the protected file ~/.config/huggingface/hf_token."""
    tok = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if tok:
        return tok.strip()
    path = os.path.expanduser("~/.config/huggingface/hf_token")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def fetch_checkpoint(uri: str, cache_root: str) -> tuple[str, str]:
    """Makes a checkpoint directory local; returns (local dir, fingerprint).

    gs://bucket/path/ is copied once into cache_root (gcsfs when installed, else
    google-cloud-storage; both use the ambient Google credentials). A local directory is used
    in place.
    """
    if not uri.startswith("gs://"):
        if not os.path.isdir(uri):
            raise FileNotFoundError(f"checkpoint {uri} is neither gs://… nor a local directory")
        names = sorted(os.listdir(uri))
        fp = hashlib.sha256("\n".join(f"{n}:{os.path.getsize(os.path.join(uri, n))}" for n in names).encode()).hexdigest()
        return uri, "local:" + fp[:16]
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    dest = os.path.join(cache_root, "naturelm-checkpoints", key)
    marker = os.path.join(dest, ".beans-slurm-complete")
    listing: list[str] = []
    if not os.path.exists(marker):
        os.makedirs(dest, exist_ok=True)
        src = uri.rstrip("/")
        try:
            import gcsfs  # noqa: PLC0415

            fs = gcsfs.GCSFileSystem()
            for path, info in sorted(fs.find(src, detail=True).items()):
                rel = path[len(src.removeprefix("gs://")):].lstrip("/") or os.path.basename(path)
                listing.append(f"{rel}:{info.get('size')}:{info.get('crc32c') or info.get('md5Hash') or info.get('generation')}")
                target = os.path.join(dest, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                log.info("downloading %s", path)
                fs.get(path, target)
        except ImportError:
            from google.cloud import storage  # noqa: PLC0415

            bucket_name, _, prefix = src.removeprefix("gs://").partition("/")
            client = storage.Client()
            for blob in client.list_blobs(bucket_name, prefix=prefix):
                rel = blob.name[len(prefix):].lstrip("/") or os.path.basename(blob.name)
                listing.append(f"{rel}:{blob.size}:{blob.crc32c}")
                target = os.path.join(dest, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                log.info("downloading gs://%s/%s", bucket_name, blob.name)
                blob.download_to_filename(target)
        if not listing:
            raise FileNotFoundError(f"no files under {uri}")
        with open(marker, "w", encoding="utf-8") as f:
            f.write("\n".join(sorted(listing)) + "\n")
    with open(marker, encoding="utf-8") as f:
        fp = hashlib.sha256(f.read().encode()).hexdigest()
    return dest, "gcs:" + fp[:16]


class NatureLMModel:
    """NatureLM-audio through the public NatureLM package (github.com/earthspecies/NatureLM-audio)."""

    def __init__(self, kit: str, args: argparse.Namespace):
        self.kit = kit
        self.args = args
        self.checkpoint_uri = args.checkpoint_uri or None
        self.model_id = self.checkpoint_uri or args.model_id
        self.revision = "" if self.checkpoint_uri else args.revision
        self.model = None
        self.device = None

    def info(self) -> dict[str, Any]:
        return {"model": self.model_id, "model_revision": self.revision, "stub": False, "recipe": recipe(self.args)}

    def load(self) -> None:
        import torch  # noqa: PLC0415
        import torchaudio  # noqa: PLC0415
        from NatureLM.config import GenerateConfig  # noqa: PLC0415
        from NatureLM.models import NatureLM  # noqa: PLC0415

        self.torch, self.torchaudio, self.GenerateConfig = torch, torchaudio, GenerateConfig
        self.device = self.args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        token = hf_token()
        cache = self.args.cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "beans-slurm")
        if self.checkpoint_uri:
            local, self.revision = fetch_checkpoint(self.checkpoint_uri, cache)
            if not os.path.exists(os.path.join(local, "config.json")):
                raise FileNotFoundError(f"{self.checkpoint_uri} holds no config.json: the checkpoint must be a "
                                        "directory as NatureLM.save_pretrained writes it (config.json + model.safetensors)")
            log.info("loading NatureLM-audio from %s (%s)", self.checkpoint_uri, local)
            model = NatureLM.from_pretrained(local)
        else:
            log.info("loading NatureLM-audio %s@%s from the Hugging Face Hub", self.args.model_id, self.args.revision)
            model = NatureLM.from_pretrained(self.args.model_id, revision=self.args.revision, token=token)
            try:
                from huggingface_hub import HfApi  # noqa: PLC0415

                self.revision = HfApi().model_info(self.args.model_id, revision=self.args.revision, token=token).sha
            except Exception as e:  # noqa: BLE001 (offline nodes: keep the requested revision)
                log.warning("could not resolve %s@%s to a commit: %s", self.args.model_id, self.args.revision, e)
        model = model.to(self.device).eval()
        # As the recipe does: pad with end-of-text so that beam search over a batch works.
        model.llama_tokenizer.pad_token_id = model.llama_tokenizer.eos_token_id
        model.llama_model.generation_config.pad_token_id = model.llama_tokenizer.pad_token_id
        self.model = model

    def _prepare(self, audio: ps.Audio, cap: float):
        """The recipe's audio: mono, 16 kHz, cut or zero-padded to cap seconds, clamped."""
        torch = self.torch
        x = torch.from_numpy(audio.numpy())
        if audio.sample_rate != SAMPLE_RATE:
            x = self.torchaudio.functional.resample(x, orig_freq=audio.sample_rate, new_freq=SAMPLE_RATE)
        n = int(round(cap * SAMPLE_RATE))
        x = x[:n]
        if x.shape[0] < n:
            x = torch.nn.functional.pad(x, (0, n - x.shape[0]))
        return torch.clamp(x, -1.0, 1.0)

    def predict(self, items: list[ps.Item]) -> list[ps.Answer | str | BaseException]:
        out: list[Any] = [None] * len(items)
        groups: dict[tuple[float, float, int], list[int]] = {}
        for k, it in enumerate(items):
            if len(it.audio) != 1:
                out[k] = ps.ItemError(f"NatureLM-audio takes exactly one audio clip per item "
                                      f"(one {ps.AUDIO_PLACEHOLDER} placeholder); this item has {len(it.audio)}")
                continue
            cap = float(it.max_length_seconds or self.args.default_max_length_seconds)
            temp = float(it.temperature or 0.0)
            max_new = self.args.max_new_tokens
            if self.args.honour_max_tokens and it.max_tokens:
                max_new = min(max_new, it.max_tokens)
            groups.setdefault((cap, temp, max_new), []).append(k)
        for (cap, temp, max_new), idx in groups.items():
            try:
                answers = self._generate([items[k] for k in idx], cap, temp, max_new)
            except Exception as e:  # noqa: BLE001 (this group's items fail, the others go on)
                log.exception("generation failed for %d item(s)", len(idx))
                answers = [e] * len(idx)
            for k, a in zip(idx, answers):
                out[k] = a
        return out

    def _generate(self, group: list[ps.Item], cap: float, temp: float, max_new: int) -> list[ps.Answer]:
        torch = self.torch
        raw = torch.stack([self._prepare(it.audio[0], cap) for it in group]).to(self.device)
        batch = {"raw_wav": raw, "padding_mask": torch.zeros_like(raw, dtype=torch.bool), "audio_chunk_sizes": 1}
        prompts = [render_llama31(it.messages) for it in group]
        cfg = self.GenerateConfig(max_new_tokens=max_new, num_beams=self.args.num_beams, do_sample=temp > 0,
                                  min_length=1, temperature=temp if temp > 0 else RECIPE_TEMPERATURE,
                                  repetition_penalty=1.0, length_penalty=1.0)
        with torch.inference_mode():
            texts = self.model.generate(batch, cfg, prompts)
        tok = self.model.llama_tokenizer
        answers = []
        for prompt, text in zip(prompts, texts):
            n_out = len(tok(text, add_special_tokens=False).input_ids)
            n_in = len(tok(prompt, add_special_tokens=False).input_ids)
            answers.append(ps.Answer(text.strip(), "length" if n_out >= max_new else "stop", n_in, n_out))
        return answers


def make_kit(name: str, default_model_id: str, description: str) -> ps.Kit:
    def add_arguments(g: argparse._ArgumentGroup) -> None:
        g.add_argument("--model-id", default=os.environ.get("NATURELM_MODEL_ID", default_model_id),
                       help="Hugging Face repo of the weights (gated: HF_TOKEN) [$NATURELM_MODEL_ID]")
        g.add_argument("--revision", default=os.environ.get("NATURELM_MODEL_REVISION", "main"),
                       help="revision of --model-id [$NATURELM_MODEL_REVISION]")
        g.add_argument("--checkpoint-uri", default=os.environ.get(CHECKPOINT_ENV, ""),
                       help=f"load this checkpoint directory instead (gs://… or a local path) [${CHECKPOINT_ENV}]")
        g.add_argument("--device", default="", help="torch device (default cuda when available)")
        g.add_argument("--cache-dir", default=os.environ.get("BEANS_SLURM_CACHE", ""),
                       help="where gs:// checkpoints are copied (default ~/.cache/beans-slurm)")
        g.add_argument("--default-max-length-seconds", type=float, default=DEFAULT_CAP_SECONDS,
                       help="audio cap when generation_config has no max_length_seconds")
        g.add_argument("--num-beams", type=int, default=NUM_BEAMS)
        g.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
        g.add_argument("--honour-max-tokens", action="store_true",
                       help="cap new tokens at generation_config.max_tokens (the recipe ignores it)")

    def stub_model_id(args: argparse.Namespace) -> str:
        return args.checkpoint_uri or args.model_id

    kit = ps.Kit(
        name=name,
        description=description,
        stub_model_id=stub_model_id,
        make_model=lambda args: NatureLMModel(name, args),
        add_arguments=add_arguments,
        default_max_batch_size=8,
        stub_extra=lambda args: {"recipe": recipe(args)},
    )
    return kit
