"""predictions_v1 server shared by every beans-slurm launcher kit.

Standard library only (Python >= 3.11): a kit supplies a Model and this module serves it.

    GET  /health   200 {"status": "ok"} once the model is loaded; 503 {"status": "loading"}
                   before (the model loads in a background thread). Never needs the token.
    GET  /info     the launcher's identity and capabilities (name, model, model_revision,
                   audio_payload_types, max_batch_size, supports_batching, schema_versions and
                   the model's extra fields).
    POST /predict  a predictions_v1 batch. Batch-level violations (body not a JSON object,
                   schema_version other than predictions_v1, no requests, duplicate
                   sample_ids) answer HTTP 400; more items than max_batch_size, or a body over
                   the size limit, HTTP 413 (the JSON body states the limit). Every other
                   problem is a per-item error: HTTP 200, the item carries "error", and its
                   neighbours are still answered. Answers come back in reverse request
                   order, like the Go reference launcher, so that clients that match by
                   position instead of sample_id fail at once.

With a token file (--token-file, else $BEANS_SLURM_TOKEN_FILE; a file only its owner may read),
/info and /predict require "Authorization: Bearer <token>" and answer 401 otherwise.

A kit's serve.py builds a Kit and calls Kit.main(); see launchers/README.md.
"""

from __future__ import annotations

import argparse
import array
import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Protocol, Sequence

SCHEMA_VERSION = "predictions_v1"
AUDIO_PLACEHOLDER = "<Audio><AudioHere></Audio>"
PAYLOAD_BASE64_WAV = "base64_wav"
PAYLOAD_FILE_PATH = "file_path"
PAYLOAD_FILE_URL = "file_url"
KNOWN_PAYLOADS = (PAYLOAD_BASE64_WAV, PAYLOAD_FILE_PATH, PAYLOAD_FILE_URL)

DEFAULT_MAX_BODY_BYTES = 512 << 20
DEFAULT_SHUTDOWN_GRACE = 10.0
TOKEN_FILE_ENV = "BEANS_SLURM_TOKEN_FILE"

log = logging.getLogger("predictions_server")


# --------------------------------------------------------------------------------------------
# Audio


class AudioError(ValueError):
    """An audio payload that cannot be used (a per-item error)."""


_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class Audio:
    """One decoded audio input of a request item.

    wav_bytes is the complete RIFF/WAV file as received. sample_rate, channels and frames come
    from the WAV header (declared_sample_rate is what the request said; the header wins when
    they differ). samples() decodes to mono float32 in [-1, 1] on first use: kits that need
    the waveform pay for the decoding, the stub does not.
    """

    def __init__(self, wav_bytes: bytes, *, payload_type: str, source: str, declared_sample_rate: int):
        self.wav_bytes = wav_bytes
        self.payload_type = payload_type
        self.source = source
        self.declared_sample_rate = declared_sample_rate
        (self.format_tag, self.channels, self.sample_rate, self.bits_per_sample,
         self._data_start, self._data_end) = _parse_wav(wav_bytes)
        block = self.channels * self.bits_per_sample // 8
        self.frames = (self._data_end - self._data_start) // block
        self._samples: array.array | None = None
        self._lock = threading.Lock()

    @property
    def duration_sec(self) -> float:
        return self.frames / self.sample_rate

    def sha256(self) -> str:
        return hashlib.sha256(self.wav_bytes).hexdigest()

    def samples(self) -> array.array:
        """Mono float32 samples (array('f')); channels are averaged."""
        with self._lock:
            if self._samples is None:
                self._samples = _decode_samples(self)
            return self._samples

    def numpy(self):
        """The samples as a numpy float32 array (imports numpy: real mode only)."""
        import numpy as np  # noqa: PLC0415 (heavy import kept out of module level)

        return np.frombuffer(self.samples(), dtype=np.float32).copy()


def _parse_wav(b: bytes) -> tuple[int, int, int, int, int, int]:
    """Checks a RIFF/WAVE file; returns (format, channels, rate, bits, data start, data end)."""
    if len(b) < 12 or b[0:4] != b"RIFF" or b[8:12] != b"WAVE":
        raise AudioError("audio is not a RIFF/WAVE file")
    pos = 12
    fmt = None
    data = None
    while pos + 8 <= len(b):
        cid = b[pos:pos + 4]
        (size,) = struct.unpack_from("<I", b, pos + 4)
        start = pos + 8
        end = start + size
        if cid == b"fmt ":
            if size < 16 or end > len(b):
                raise AudioError("WAV fmt chunk is truncated")
            tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", b, start)
            if tag == _WAVE_FORMAT_EXTENSIBLE:
                if size < 40:
                    raise AudioError("WAV fmt chunk of WAVE_FORMAT_EXTENSIBLE is truncated")
                (tag,) = struct.unpack_from("<H", b, start + 24)  # first two bytes of the sub-format GUID
            fmt = (tag, channels, rate, bits, block_align)
        elif cid == b"data":
            # Streaming writers leave the size at 0 or 0xFFFFFFFF: take what is there.
            if end > len(b) or size == 0xFFFFFFFF:
                end = len(b)
            data = (start, end)
            if fmt is not None:
                break
        pos = end + (size & 1)
    if fmt is None:
        raise AudioError("WAV file has no fmt chunk")
    if data is None:
        raise AudioError("WAV file has no data chunk")
    tag, channels, rate, bits, block_align = fmt
    if channels < 1:
        raise AudioError("WAV file declares no channels")
    if rate < 1:
        raise AudioError("WAV file declares a sample rate of 0")
    ok = (tag == _WAVE_FORMAT_PCM and bits in (8, 16, 24, 32)) or (tag == _WAVE_FORMAT_IEEE_FLOAT and bits in (32, 64))
    if not ok:
        raise AudioError(f"unsupported WAV encoding (format tag {tag:#06x}, {bits} bits): "
                         "use PCM 8/16/24/32-bit or IEEE float 32/64-bit")
    if block_align != channels * bits // 8:
        raise AudioError(f"WAV block align {block_align} does not match {channels} channel(s) of {bits} bits")
    start, end = data
    end = start + (end - start) // block_align * block_align
    return tag, channels, rate, bits, start, end


def _decode_samples(a: Audio) -> array.array:
    raw = memoryview(a.wav_bytes)[a._data_start:a._data_end]
    bits, tag = a.bits_per_sample, a.format_tag
    if tag == _WAVE_FORMAT_IEEE_FLOAT:
        vals = array.array("f" if bits == 32 else "d")
        vals.frombytes(raw)
        if sys.byteorder == "big":
            vals.byteswap()
        scale = 1.0
    elif bits == 8:
        vals = array.array("f", (x - 128 for x in raw))
        scale = 1.0 / 128
    elif bits == 16:
        vals = array.array("h")
        vals.frombytes(raw)
        if sys.byteorder == "big":
            vals.byteswap()
        scale = 1.0 / 32768
    elif bits == 32:
        vals = array.array("i" if array.array("i").itemsize == 4 else "l")
        vals.frombytes(raw)
        if sys.byteorder == "big":
            vals.byteswap()
        scale = 1.0 / 2147483648
    else:  # 24-bit
        vals = array.array("i", (int.from_bytes(raw[i:i + 3], "little", signed=True) for i in range(0, len(raw), 3)))
        scale = 1.0 / 8388608
    ch = a.channels
    if ch == 1:
        if scale == 1.0 and vals.typecode == "f":
            return vals
        return array.array("f", (x * scale for x in vals))
    s = scale / ch
    return array.array("f", (sum(vals[i:i + ch]) * s for i in range(0, len(vals) - ch + 1, ch)))


def encode_wav(samples: Sequence[float], sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of samples in [-1, 1] (for tests and self-checks)."""
    pcm = array.array("h", (max(-32767, min(32767, round(x * 32767))) for x in samples))
    if sys.byteorder == "big":
        pcm.byteswap()
    data = pcm.tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1,
                         sample_rate, sample_rate * 2, 2, 16, b"data", len(data))
    return header + data


# --------------------------------------------------------------------------------------------
# Request items


@dataclasses.dataclass
class Item:
    """One validated request item; audio[i] stands for the i-th placeholder of the prompt."""

    sample_id: str
    messages: list[dict[str, str]]
    audio: list[Audio]
    generation_config: dict[str, Any]

    def text(self) -> str:
        """Every message's content, one message per line (placeholders kept)."""
        return "\n".join(m["content"] for m in self.messages)

    @property
    def max_tokens(self) -> int | None:
        return self.generation_config.get("max_tokens")

    @property
    def temperature(self) -> float | None:
        return self.generation_config.get("temperature")

    @property
    def max_length_seconds(self) -> float | None:
        return self.generation_config.get("max_length_seconds")


@dataclasses.dataclass
class Answer:
    """A model's answer to one item. A model may also return a plain string (the answer) or an
    exception (that item's error) in place of an Answer."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ItemError(ValueError):
    """A request item that cannot be served (a per-item error)."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _safe_id(v: Any) -> str:
    return v if isinstance(v, str) else ""


class PathPolicy:
    """Which file_path payloads may be opened: regular files below one of the allowed
    directories, after resolving symbolic links; never a path with a '..' component."""

    def __init__(self, allowed_dirs: Sequence[str]):
        self.allowed = []
        for d in allowed_dirs:
            real = os.path.realpath(d)
            if not os.path.isdir(real):
                raise SystemExit(f"--allow-dir {d}: not a directory")
            self.allowed.append(real)

    def resolve(self, path: str) -> str:
        if not self.allowed:
            raise ItemError("file_path payloads are not accepted: the launcher was started without --allow-dir")
        if "\x00" in path:
            raise ItemError("file_path contains a NUL byte")
        if not os.path.isabs(path):
            raise ItemError(f"file_path {path!r} is not absolute")
        if ".." in path.replace("\\", "/").split("/"):
            raise ItemError(f"file_path {path!r} contains '..'")
        real = os.path.realpath(path)
        if not any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in self.allowed):
            raise ItemError(f"file_path {path!r} resolves outside the allowed directories")
        return real


def decode_item(raw: Any, *, paths: PathPolicy, payloads: Sequence[str], max_file_bytes: int) -> Item:
    """Validates one request item as the contract asks; raises ItemError for a malformed one."""
    if not isinstance(raw, dict):
        raise ItemError("request item is not a JSON object")
    sid = raw.get("sample_id")
    if not isinstance(sid, str) or sid == "":
        raise ItemError("sample_id is missing or empty")
    messages = raw.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ItemError("messages is missing or empty")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ItemError(f"messages[{i}] is not an object")
        role, content = m.get("role"), m.get("content")
        if not isinstance(role, str) or not role:
            raise ItemError(f"messages[{i}].role is missing or empty")
        if not isinstance(content, str):
            raise ItemError(f"messages[{i}].content is not a string")
        clean.append({"role": role, "content": content})
    gen = raw.get("generation_config")
    if not isinstance(gen, dict):
        raise ItemError("generation_config is missing or not an object (send {} for defaults)")
    gen = dict(gen)
    for key, check, what in (("max_tokens", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
                             ("temperature", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
                             ("max_length_seconds", lambda v: _is_number(v) and v > 0, "a number > 0")):
        if gen.get(key) is None:
            gen.pop(key, None)
        elif not check(gen[key]):
            raise ItemError(f"generation_config.{key} is {gen[key]!r}, want {what}")
    inputs = raw.get("audio_inputs")
    if inputs is None:
        inputs = []
    if not isinstance(inputs, list):
        raise ItemError("audio_inputs is not a list")
    n = sum(m["content"].count(AUDIO_PLACEHOLDER) for m in clean)
    if n != len(inputs):
        raise ItemError(f"prompt has {n} audio placeholder(s) {AUDIO_PLACEHOLDER} but {len(inputs)} audio input(s)")
    audio = []
    for i, a in enumerate(inputs):
        if not isinstance(a, dict):
            raise ItemError(f"audio_inputs[{i}] is not an object")
        ptype, data, rate = a.get("payload_type"), a.get("data"), a.get("sample_rate")
        if ptype not in KNOWN_PAYLOADS:
            raise ItemError(f"audio_inputs[{i}].payload_type {ptype!r} is not one of {', '.join(KNOWN_PAYLOADS)}")
        if not isinstance(data, str) or data == "":
            raise ItemError(f"audio_inputs[{i}].data is missing or empty")
        if isinstance(rate, float) and rate.is_integer():
            rate = int(rate)
        if not _is_int(rate) or rate <= 0:
            raise ItemError(f"audio_inputs[{i}].sample_rate {rate!r} is not a positive integer")
        if ptype == PAYLOAD_FILE_PATH and not paths.allowed:
            raise ItemError(f"audio_inputs[{i}]: file_path payloads are not accepted: "
                            "the launcher was started without --allow-dir")
        if ptype not in payloads:
            raise ItemError(f"audio_inputs[{i}].payload_type {ptype} is not accepted by this launcher "
                            f"(audio_payload_types: {', '.join(payloads)})")
        try:
            if ptype == PAYLOAD_BASE64_WAV:
                if data.startswith("data:"):
                    raise ItemError(f"audio_inputs[{i}].data has a data: URL prefix; send plain base64")
                try:
                    wav = base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError) as e:
                    raise ItemError(f"audio_inputs[{i}].data is not standard base64: {e}") from None
                audio.append(Audio(wav, payload_type=ptype, source="base64_wav", declared_sample_rate=rate))
            else:  # file_path
                real = paths.resolve(data)
                try:
                    st = os.stat(real)
                    if not stat.S_ISREG(st.st_mode):
                        raise ItemError(f"audio_inputs[{i}] file_path {data!r} is not a regular file")
                    if st.st_size > max_file_bytes:
                        raise ItemError(f"audio_inputs[{i}] file_path {data!r} is larger than {max_file_bytes} bytes")
                    with open(real, "rb") as f:
                        wav = f.read(max_file_bytes + 1)
                except OSError as e:
                    raise ItemError(f"audio_inputs[{i}] file_path {data!r}: {e.strerror or e}") from None
                audio.append(Audio(wav, payload_type=ptype, source=real, declared_sample_rate=rate))
        except AudioError as e:
            raise ItemError(f"audio_inputs[{i}]: {e}") from None
        except ItemError as e:
            msg = str(e)
            raise ItemError(msg if msg.startswith("audio_inputs[") else f"audio_inputs[{i}]: {msg}") from None
    return Item(sample_id=sid, messages=clean, audio=audio, generation_config=gen)


class BatchError(ValueError):
    """A batch-level violation: the whole request is refused with HTTP 400."""


def decode_batch(body: bytes) -> list[Any]:
    """Checks the envelope of a request; returns its raw items."""
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BatchError(f"request body is not a predictions_v1 JSON object: {e}") from None
    if not isinstance(req, dict):
        raise BatchError("request body is not a JSON object")
    sv = req.get("schema_version")
    if sv != SCHEMA_VERSION:
        raise BatchError(f"schema_version is {json.dumps(sv)}, want {json.dumps(SCHEMA_VERSION)}")
    items = req.get("requests")
    if not isinstance(items, list):
        raise BatchError("requests is missing or not a list")
    if not items:
        raise BatchError("requests is empty")
    seen = set()
    for it in items:
        sid = it.get("sample_id") if isinstance(it, dict) else None
        if sid is not None and not isinstance(sid, str):
            raise BatchError(f"sample_id {json.dumps(sid)} is not a string")
        if sid:
            if sid in seen:
                raise BatchError(f"duplicate sample_id {json.dumps(sid)} in one batch")
            seen.add(sid)
    return items


# --------------------------------------------------------------------------------------------
# Models


class Model(Protocol):
    """What a kit serves.

    load() may take minutes (weights); it runs in a background thread while /health answers
    503. info() returns the /info fields the model decides: at least "model" and
    "model_revision"; any other key is an extra identity field. predict() answers one batch
    of validated items, one entry per item in the same order: an Answer, a str (the answer) or
    an exception (that item's error). It is never called concurrently.
    """

    def load(self) -> None: ...

    def info(self) -> dict[str, Any]: ...

    def predict(self, items: list[Item]) -> list[Answer | str | BaseException]: ...


def stub_answer(kit: str, item: Item) -> str:
    """The stub's deterministic answer: 'stub:<kit>:' and 16 hex digits of the sha256 of the
    audio files and the text."""
    h = hashlib.sha256()
    for a in item.audio:
        h.update(a.wav_bytes)
    h.update(item.text().encode("utf-8"))
    return f"stub:{kit}:{h.hexdigest()[:16]}"


class StubModel:
    """Deterministic answers without any model: no weights, no GPU, no third-party import."""

    def __init__(self, kit: str, model_id: str, extra: dict[str, Any] | None = None):
        self.kit = kit
        self.model_id = model_id
        self.extra = dict(extra or {})

    def load(self) -> None:
        return None

    def info(self) -> dict[str, Any]:
        return {"model": f"stub:{self.model_id}", "model_revision": "stub", "stub": True, **self.extra}

    def predict(self, items: list[Item]) -> list[Answer | str | BaseException]:
        return [Answer(stub_answer(self.kit, it), "stop", len(it.text().split()) + len(it.audio), 1) for it in items]


def stub_env_var(kit: str) -> str:
    """NATURELM_V1_1_STUB for naturelm-v1.1: upper case, '-' and '.' become '_'."""
    return "".join("_" if c in "-." else c.upper() for c in kit) + "_STUB"


def stub_enabled(kit: str) -> bool:
    return os.environ.get(stub_env_var(kit), "").strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------------------------
# HTTP


class _State:
    def __init__(self, *, kit: str, model: Model, max_batch: int, max_body: int, token: str | None,
                 paths: PathPolicy):
        self.kit = kit
        self.model = model
        self.max_batch = max_batch
        self.max_body = max_body
        self.token = token
        self.paths = paths
        self.payloads = [PAYLOAD_BASE64_WAV] + ([PAYLOAD_FILE_PATH] if paths.allowed else [])
        self.ready = threading.Event()
        self.model_lock = threading.Lock()
        self.inflight = 0
        self.inflight_cv = threading.Condition()

    def info(self) -> dict[str, Any]:
        doc = {"name": f"beans-slurm-{self.kit}", "model_revision": ""}
        doc.update(self.model.info())
        doc.update({
            "audio_payload_types": list(self.payloads),
            "max_batch_size": self.max_batch,
            "supports_batching": self.max_batch > 1,
            "schema_versions": [SCHEMA_VERSION],
            "kit": self.kit,
        })
        return doc


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self) -> str:
        return "beans-slurm-kit"
    timeout = 300  # seconds a connection may stay silent

    @property
    def st(self) -> _State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        log.debug("%s %s", self.address_string(), format % args)

    # -- plumbing ---------------------------------------------------------------------------

    def _send(self, status: int, doc: Any, *, close: bool = False, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, msg: str, **kw: Any) -> None:
        self._send(status, {"error": msg}, **kw)

    def _route(self) -> None:
        with self.st.inflight_cv:
            self.st.inflight += 1
        try:
            path = self.path.split("?", 1)[0]
            allowed = {"/health": ("GET", "HEAD"), "/info": ("GET", "HEAD"), "/predict": ("POST",)}.get(path)
            has_body = self.headers.get("Content-Length", "0") not in ("", "0") or "Transfer-Encoding" in self.headers
            if allowed is None:
                self._error(404, f"no such endpoint {path} (this launcher serves /health, /info, /predict)", close=has_body)
                return
            if self.command not in allowed:
                self._error(405, f"method {self.command} not allowed on {path} (use {', '.join(allowed)})",
                            close=has_body, headers={"Allow": ", ".join(allowed)})
                return
            if path == "/health":
                if self.st.ready.is_set():
                    self._send(200, {"status": "ok"})
                else:
                    self._send(503, {"status": "loading"})
                return
            if not self._authorized(close=has_body):
                return
            if path == "/info":
                self._send(200, self.st.info())
            else:
                self._predict()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # noqa: BLE001 (a server must answer)
            log.error("unexpected error serving %s %s:\n%s", self.command, self.path, traceback.format_exc())
            try:
                self._error(500, "internal launcher error (see the launcher's log)", close=True)
            except OSError:
                self.close_connection = True
        finally:
            with self.st.inflight_cv:
                self.st.inflight -= 1
                self.st.inflight_cv.notify_all()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _route

    def _authorized(self, *, close: bool) -> bool:
        token = self.st.token
        if token is None:
            return True
        scheme, _, got = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(got.strip().encode("utf-8"), token.encode("utf-8")):
            return True
        self._error(401, "this launcher requires its sweep's bearer token (Authorization: Bearer ...)", close=close,
                    headers={"WWW-Authenticate": 'Bearer realm="beans-slurm launcher"'})
        return False

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering an error (the connection is then closed)."""
        limit = self.st.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self._error(400, "malformed chunked request body", close=True)
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > limit:
                    self._send(413, {"error": f"request body exceeds the limit of {limit} bytes", "max_body_bytes": limit},
                               close=True)
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if length is None:
            self._error(411, "POST /predict needs a Content-Length (or a chunked body)", close=True)
            return None
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self._error(400, f"bad Content-Length {length!r}", close=True)
            return None
        if n > limit:
            self._send(413, {"error": f"request body of {n} bytes exceeds the limit of {limit} bytes", "max_body_bytes": limit},
                       close=True)
            return None
        body = self.rfile.read(n)
        if len(body) != n:
            self._error(400, f"request body ended after {len(body)} of {n} announced bytes", close=True)
            return None
        return body

    # -- /predict ---------------------------------------------------------------------------

    def _predict(self) -> None:
        start = time.monotonic()
        body = self._read_body()
        if body is None:
            return
        st = self.st
        try:
            raw_items = decode_batch(body)
        except BatchError as e:
            log.warning("refused /predict batch (HTTP 400): %s", e)
            self._error(400, str(e))
            return
        if len(raw_items) > st.max_batch:
            msg = f"batch of {len(raw_items)} items exceeds max_batch_size {st.max_batch}"
            log.warning("refused /predict batch (HTTP 413): %s", msg)
            self._send(413, {"error": msg, "max_batch_size": st.max_batch})
            return
        if not st.ready.is_set():
            self._send(503, {"error": "the model is still loading; wait for GET /health to answer 200"},
                       headers={"Retry-After": "10"})
            return

        answers: list[dict[str, Any] | None] = [None] * len(raw_items)
        valid: list[tuple[int, Item]] = []
        for i, raw in enumerate(raw_items):
            try:
                valid.append((i, decode_item(raw, paths=st.paths, payloads=st.payloads, max_file_bytes=st.max_body)))
            except ItemError as e:
                answers[i] = _failed(_safe_id(raw.get("sample_id") if isinstance(raw, dict) else None), str(e),
                                     time.monotonic() - start)
        if valid:
            items = [it for _, it in valid]
            with st.model_lock:
                t0 = time.monotonic()
                try:
                    got = list(st.model.predict(items))
                    if len(got) != len(items):
                        raise RuntimeError(f"model returned {len(got)} answers for {len(items)} items")
                except Exception as e:  # noqa: BLE001 (the batch's failure lands on its items)
                    log.error("model failed on a batch of %d: %s", len(items), traceback.format_exc())
                    got = [e] * len(items)
                model_sec = time.monotonic() - t0
            for (i, it), out in zip(valid, got):
                answers[i] = _answered(it.sample_id, out, time.monotonic() - start, model_sec)
        failed = sum(1 for a in answers if a and a.get("error"))
        answers.reverse()
        self._send(200, {"schema_version": SCHEMA_VERSION, "responses": answers})
        log.info("answered /predict: %d item(s), %d failed, %.3f s", len(answers), failed, time.monotonic() - start)


def _failed(sample_id: str, msg: str, elapsed: float) -> dict[str, Any]:
    return {"sample_id": sample_id, "predictions": [], "error": msg, "finish_reason": "error",
            "latency_sec": round(elapsed, 6)}


def _answered(sample_id: str, out: Any, elapsed: float, model_sec: float) -> dict[str, Any]:
    if isinstance(out, BaseException):
        return _failed(sample_id, f"{type(out).__name__}: {out}" if str(out) else type(out).__name__, elapsed)
    if isinstance(out, str):
        out = Answer(out)
    if not isinstance(out, Answer) or not isinstance(out.text, str):
        return _failed(sample_id, f"model returned {type(out).__name__}, not an answer", elapsed)
    usage = {}
    if out.prompt_tokens is not None:
        usage["prompt_tokens"] = out.prompt_tokens
    if out.completion_tokens is not None:
        usage["completion_tokens"] = out.completion_tokens
    doc = {"sample_id": sample_id, "predictions": [out.text], "error": None,
           "finish_reason": out.finish_reason or "stop", "latency_sec": round(elapsed, 6)}
    if usage:
        doc["usage"] = usage
    return doc


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], state: _State):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        super().__init__(addr, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), slow on some clusters: skip it.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), port


# --------------------------------------------------------------------------------------------
# Command line


def read_token_file(path: str) -> str:
    """The bearer token in path, which only its owner may read or write."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise SystemExit(f"token file {path}: {e.strerror or e}") from None
    if st.st_mode & 0o077:
        raise SystemExit(f"token file {path} has mode {stat.S_IMODE(st.st_mode):04o}: "
                         "group and others must have no access (chmod 600)")
    with open(path, encoding="utf-8") as f:
        token = f.read().strip()
    if not token:
        raise SystemExit(f"token file {path} is empty")
    if any(c.isspace() for c in token):
        raise SystemExit(f"token file {path} holds white space inside the token")
    return token


def predict_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname() or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/predict"


@dataclasses.dataclass
class Kit:
    """A serving kit: its name, default batch limit, kit-specific arguments and model factory.

    make_model(args) builds the real model (heavy imports belong in its load()). In stub mode
    (<KIT>_STUB=1 or --stub) a StubModel stands in for it: its /info model is
    "stub:" + stub_model_id (a string, or a function of the arguments), with the extra fields
    of stub_extra(args).
    """

    name: str
    description: str
    stub_model_id: str | Callable[[argparse.Namespace], str]
    make_model: Callable[[argparse.Namespace], Model]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    default_max_batch_size: int = 4
    stub_extra: Callable[[argparse.Namespace], dict[str, Any]] | None = None

    def parser(self) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog=f"{self.name}/serve.py", description=self.description,
                                    formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        g = p.add_argument_group("server (shared by every kit)")
        g.add_argument("--host", default="0.0.0.0", help="address to listen on")
        g.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
        g.add_argument("--max-batch-size", type=int, default=self.default_max_batch_size,
                       help="most items in one POST /predict (HTTP 413 beyond)")
        g.add_argument("--token-file", default=os.environ.get(TOKEN_FILE_ENV) or None,
                       help=f"require the bearer token in this 0600 file on /info and /predict (default ${TOKEN_FILE_ENV})")
        g.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                       help="accept file_path payloads below DIR (repeatable); without it file_path is refused")
        g.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                       help="largest request body (HTTP 413 beyond), also the largest file_path file")
        g.add_argument("--shutdown-grace", type=float, default=DEFAULT_SHUTDOWN_GRACE,
                       help="seconds to let requests in flight finish after SIGTERM")
        g.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"),
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
        g.add_argument("--stub", action="store_true",
                       help=f"deterministic answers without the model (same as {stub_env_var(self.name)}=1)")
        if self.add_arguments is not None:
            self.add_arguments(p.add_argument_group(f"model ({self.name})"))
        return p

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        p = self.parser()
        args = p.parse_args(argv)
        if args.max_batch_size < 1:
            p.error("--max-batch-size must be >= 1")
        if not 0 <= args.port <= 65535:
            p.error("--port must be in 0..65535")
        args.stub = args.stub or stub_enabled(self.name)
        return args

    def create_model(self, args: argparse.Namespace) -> Model:
        if args.stub:
            extra = self.stub_extra(args) if self.stub_extra else {}
            mid = self.stub_model_id(args) if callable(self.stub_model_id) else self.stub_model_id
            return StubModel(self.name, mid, extra)
        return self.make_model(args)

    def main(self, argv: Sequence[str] | None = None) -> int:
        args = self.parse(argv)
        logging.basicConfig(level=args.log_level, stream=sys.stderr,
                            format=f"%(asctime)s %(levelname)s {self.name}: %(message)s")
        token = read_token_file(args.token_file) if args.token_file else None
        paths = PathPolicy(args.allow_dir)
        model = self.create_model(args)
        state = _State(kit=self.name, model=model, max_batch=args.max_batch_size, max_body=args.max_body_bytes,
                       token=token, paths=paths)
        try:
            server = _Server((args.host, args.port), state)
        except OSError as e:
            log.error("cannot listen on %s:%d: %s", args.host, args.port, e)
            return 1
        port = server.server_address[1]
        print(predict_url(args.host, port), flush=True)

        stop = threading.Event()
        result = {"code": 0}

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

        def load() -> None:
            t0 = time.monotonic()
            try:
                model.load()
            except BaseException:  # noqa: BLE001 (reported, then the launcher exits)
                log.error("loading the model failed:\n%s", traceback.format_exc())
                result["code"] = 1
                stop.set()
                return
            state.ready.set()
            log.info("model ready after %.1f s: %s", time.monotonic() - t0, json.dumps(state.info(), ensure_ascii=False))

        mode = "stub mode" if args.stub else "loading the model"
        log.info("listening on %s (%s; token %s; file_path below %s)", predict_url(args.host, port), mode,
                 "required" if token else "off", ", ".join(paths.allowed) or "nowhere")
        loader = threading.Thread(target=load, name="load-model", daemon=True)
        loader.start()
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="serve", daemon=True)
        serving.start()
        while not stop.wait(0.5):
            if not serving.is_alive():
                log.error("the HTTP server stopped unexpectedly")
                result["code"] = 1
                break
        server.shutdown()
        deadline = time.monotonic() + args.shutdown_grace
        with state.inflight_cv:
            while state.inflight > 0 and time.monotonic() < deadline:
                state.inflight_cv.wait(deadline - time.monotonic())
            left = state.inflight
        if left:
            log.warning("%d request(s) still running after %.0f s: cut off", left, args.shutdown_grace)
        server.server_close()
        log.info("stopped")
        logging.shutdown()
        sys.stdout.flush()
        if loader.is_alive():
            # A model still loading (in native code) must not hold the exit.
            os._exit(result["code"])
        return result["code"]

