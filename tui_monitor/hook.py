"""The training-side hook: what a training script imports.

Standard library only, in one file, so it can also be copied next to a training
script on a locked-down cluster (see hooks/README.md). Nothing here raises into
the training loop: failures are warned about once and counted.

Read top to bottom, each part uses only those above it:

* values: what ``log()`` keeps of a value at the call (a number read from a
  CPU tensor, a CUDA loss copied on the GPU without waiting for it) and how
  the writer turns it into JSON; configs as plain dicts;
* :class:`_Drops` counts what could not be recorded, by reason;
  :class:`_GradWatch` keeps the gradient signals of a watched model;
* the sinks: :class:`_FileSink` (whole lines to a file) and
  :class:`_SocketSink` (to a listener, with its handshake);
* :class:`_Writer`, the run's writer thread, the only one that converts,
  encodes and writes;
* the process hooks, which end every run on exit, on an uncaught exception,
  on SIGTERM/SIGINT and in multiprocessing children, and keep forked
  children off their parent's stream;
* :class:`Run`, what the script holds, and :func:`init`, which makes one: the
  public API, last.

The format written is docs/stream-format.md, version 1.
"""
from __future__ import annotations

import atexit
import collections
import collections.abc
import errno
import hashlib
import hmac
import json
import math
import os
import queue
import secrets
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
import weakref

FORMAT_VERSION = 1
MAX_LINE = 1 << 20
_METRICS, _GRADS, _META = 0, 1, 2
# log() queues a copy of the user's dict, its values read (see _captured),
# with its step, time and split under these private keys: a dict of plain
# numbers is not tracked by the garbage collector; a tuple holding a dict is,
# and a second's worth of them piled up in the oldest generation sets off
# full collections inside log().
_KIND, _STEP, _TIME, _SPLIT = object(), object(), object(), object()
_LAST = object()   # left in the queue by the writer once it has read it for the last time
_now = time.time

__all__ = ["init", "Run", "FORMAT_VERSION"]

#: A run's states (``Run.state``). A run is ``open`` from init(); close()
#: hands the end record to the writer (``closing``); the writer writes it and
#: closes the file (``ended``), then gives the socket sink its time to
#: deliver (``closed``). ``off``: nothing is recorded (the hook disabled, a
#: rank that does not write, init() could not start it). ``forked``: this
#: process is a fork of the one that started the run (a DataLoader worker):
#: nothing of it is written here.
_OFF, _OPEN, _CLOSING, _ENDED, _CLOSED, _FORKED = "off", "open", "closing", "ended", "closed", "forked"


# ---------------------------------------------------------------- values

def _nonfinite(x):
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def _number(v):
    """A JSON-ready number for a scalar-like value; raise TypeError otherwise.

    torch tensors and numpy scalars are duck-typed through ``.item()`` so that
    neither library is imported here.
    """
    t = type(v)
    if t is float:
        return v if math.isfinite(v) else _nonfinite(v)
    if t is int:
        return v if v.bit_length() < 14_000 else _checked_int(v)
    if t is bool:
        return int(v)
    if t is str:
        raise TypeError("str")
    item = getattr(v, "item", None)
    if item is not None:
        numel = getattr(v, "numel", None) or getattr(v, "size", None)
        n = numel() if callable(numel) else numel
        if n is not None and n != 1:
            raise TypeError(f"not a scalar ({t.__name__} with {n} elements)")
        return _number(item())
    if isinstance(v, float) or hasattr(v, "__float__"):
        return _number(float(v))
    if isinstance(v, int) or hasattr(v, "__index__"):
        return _number(int(v))
    raise TypeError(t.__name__)


class IntegerTooLong(ValueError):
    """An int Python will not write as text (``sys.get_int_max_str_digits()``)."""


def _checked_int(v):
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    digits = _int_digits(v)
    if limit and digits > limit:
        raise IntegerTooLong(f"int of {digits} digits")
    return v


_PLAIN = frozenset((float, int, str, bool))  # what log() keeps as it is: immutable, read as it comes
_ONLY_STR, _ONLY_FLOAT = frozenset((str,)), frozenset((float,))
_TENSOR = None   # torch.Tensor, once a tensor has been logged (torch is never imported here)


class _NotANumber:
    """What log() keeps of a value that no record can hold (a vector, a
    tensor of many elements): what it was, for the count of dropped values,
    not the value, which may be large and change after log() returns."""

    __slots__ = ("kind", "why")

    def __init__(self, kind, why):
        self.kind, self.why = kind, why


class _OnDevice:
    """A copy of a CUDA scalar taken at log() (asynchronously, on the stream
    the training queued it on) and read in the writer thread on that same
    stream, so the read waits for the copy and the training waits for
    nothing."""

    __slots__ = ("copy", "stream")

    def __init__(self, copy, stream):
        self.copy, self.stream = copy, stream

    def numel(self):
        return 1

    def item(self):
        with sys.modules["torch"].cuda.stream(self.stream):
            return self.copy.item()


def _capture(v, depth=0):
    """What log() keeps of a value that is not a plain number or string: the
    value as it is now, since a loop may change it in place right after
    log() returns (``epoch_loss += loss``). CPU tensors and numpy values are
    read at once (a copy of a number costs what reading it does); a tensor
    on an accelerator is copied there without waiting for it and read later
    in the writer (reading it here would wait for the device); dicts and
    other mappings are copied; anything else is kept and read in the writer."""
    global _TENSOR
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(v, torch.Tensor):
        _TENSOR = torch.Tensor   # from now on, log() reads plain CPU tensors itself
        n = v.numel()
        if n != 1:
            return _NotANumber(type(v).__name__, f"not a scalar: {n} elements")
        if v.is_cpu:
            # tolist() reads the number holding the GIL; item() lets go of it,
            # and while the writer thread works the loop waits up to the
            # switch interval (5 ms) to have it back, at every value
            value = v.tolist()
            while type(value) is list:   # one element, in some shape
                value = value[0]
            return value
        copy = v.detach().clone()   # queued on the device: no sync
        if copy.is_cuda:
            return _OnDevice(copy, torch.cuda.current_stream(copy.device))
        return copy
    if isinstance(v, float):        # a float subclass: numpy.float64
        return float(v)
    if isinstance(v, int):
        return v if type(v) is bool else int(v)
    if type(v).__module__ == "numpy":
        n = getattr(v, "size", 1)
        if n != 1:
            return _NotANumber(type(v).__name__, f"not a scalar: {n} elements")
        return v.item()
    if isinstance(v, (dict, collections.abc.Mapping)):
        if depth >= 32:
            return _NotANumber(type(v).__name__, "nested more than 32 deep")
        return {k: x if type(x) in _PLAIN else _capture(x, depth + 1) for k, x in v.items()}
    return v


def _captured(values):
    """A copy of the dict ``values`` with each value as it is now (see
    :func:`_capture`); a 0-dim CPU tensor (a loss) is read here, without a
    call per value."""
    rec = {}
    for k, v in values.items():
        kind = type(v)
        if kind is _TENSOR and v.is_cpu and not v.ndim:
            try:
                rec[k] = v.tolist()   # not .item(), which lets go of the GIL (see _capture)
                continue
            except Exception:  # noqa: BLE001 - an odd dtype: _capture says what it is
                pass
        if kind in _PLAIN:
            rec[k] = v
            continue
        try:
            rec[k] = _capture(v)
        except Exception as e:  # noqa: BLE001 - the user's object: costs only itself
            rec[k] = _NotANumber(kind.__name__, f"could not be read: {e!r}")
    return rec


def _int_digits(v):
    """How many decimal digits ``v`` has, without converting it to text
    (which Python refuses past 4,300 digits)."""
    v = abs(v)
    d = int(v.bit_length() * 0.30102999566398120) + 1
    return d if v >= 10 ** (d - 1) else d - 1


def _text(obj):
    """``str(obj)``, or what can be said of it when its ``__str__`` fails."""
    try:
        return str(obj)
    except Exception as e:  # noqa: BLE001 - the user's object
        return f"<{type(obj).__name__}: str failed: {e!r}>"


def _repr(obj):
    try:
        return repr(obj)
    except Exception as e:  # noqa: BLE001 - the user's object
        return f"<{type(obj).__name__}: repr failed: {e!r}>"


def _plain(obj, depth=0):
    """A JSON-ready copy of a config-like value, as people pass them: any
    mapping (a dict, ``UserDict``, ``MappingProxyType``, an OmegaConf
    ``DictConfig``, anything with ``keys()`` and ``[]``), a dataclass, a
    namespace (``argparse``, ``types.SimpleNamespace``) or a pydantic model
    becomes a dict; a sequence or set a list; a number stays a number; anything
    else becomes its repr. Never raises: a field that cannot be read becomes a
    string that says why, and costs only itself."""
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        try:
            return _number(int(obj))
        except IntegerTooLong as e:
            return f"<{e}>"
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else _nonfinite(obj)
    if depth > 20:
        return f"<{type(obj).__name__} nested more than 20 deep>"
    try:
        if type(obj).__module__.startswith("omegaconf") and "omegaconf" in sys.modules:
            obj = _omegaconf_container(obj)
            if obj is None or isinstance(obj, (str, bool, int, float)):
                return _plain(obj, depth + 1)
        if isinstance(obj, (list, tuple, set, frozenset)):
            return [_plain(v, depth + 1) for v in obj]
        if isinstance(obj, type):
            return _repr(obj)
        fields = _fields(obj)
    except Exception as e:  # noqa: BLE001 - the user's object
        return f"<unreadable {type(obj).__name__}: {e!r}>"
    if fields is not None:
        out = {}
        for key, read in fields:
            try:
                value = _plain(read(), depth + 1)
            except Exception as e:  # noqa: BLE001 - one field: costs only itself
                value = f"<unreadable: {e!r}>"
            out[key if type(key) is str else _text(key)] = value
        return out
    try:
        return _number(obj)
    except Exception:  # noqa: BLE001
        return _repr(obj)


def _omegaconf_container(cfg):
    """An OmegaConf config as plain containers, interpolations resolved where
    they can be (OmegaConf is imported by whoever made ``cfg``, never here)."""
    to_container = sys.modules["omegaconf"].OmegaConf.to_container
    try:
        return to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation that does not resolve: keep it as written
        return to_container(cfg, resolve=False)


def _fields(obj):
    """(key, () -> value) for each field of a dict-like object, or None."""
    if isinstance(obj, collections.abc.Mapping) or (hasattr(obj, "keys") and hasattr(obj, "__getitem__")):
        return [(k, lambda k=k: obj[k]) for k in list(obj.keys())]
    dataclasses = sys.modules.get("dataclasses")
    if dataclasses is not None and dataclasses.is_dataclass(obj):
        return [(f.name, lambda f=f: getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    if callable(getattr(obj, "model_dump", None)):   # pydantic
        return _fields(obj.model_dump())
    if type(obj).__name__ in ("Namespace", "SimpleNamespace") and hasattr(obj, "__dict__"):
        return _fields(vars(obj))
    return None


def _config(config):
    """The header's ``config``: always a dict (the reader takes nothing else)."""
    plain = _plain(config) if config is not None else {}
    return plain if isinstance(plain, dict) else {"config": plain}


def _tags(tags):
    """The header's ``tags``: a dict; a list of labels becomes ``{label: true}``."""
    if not tags:
        return {}
    if isinstance(tags, str):
        return {tags: True}
    plain = _plain(tags)
    if isinstance(plain, list):
        return {_text(t) if not isinstance(t, str) else t: True for t in plain}
    return plain if isinstance(plain, dict) else {"tags": plain}


def _flatten(values, prefix, out_num, out_text, bad):
    """Nested values as ``a/b`` keys: numbers into ``out_num``, strings into
    ``out_text``, and (reason, what) for each value dropped into ``bad``."""
    for k, v in values.items():
        key = f"{prefix}{k if type(k) is str else _text(k)}"
        if isinstance(v, dict):
            _flatten(v, key + "/", out_num, out_text, bad)
            continue
        if type(v) is _NotANumber:
            bad.append(("not a number", f"{key}: {v.kind} ({v.why})"))
            continue
        try:
            out_num[key] = _number(v)
        except IntegerTooLong as e:
            bad.append(("integer too long", f"{key}: {e} (Python writes at most "
                                            f"{sys.get_int_max_str_digits()} as text)"))
        except Exception as e:
            if isinstance(v, str):
                out_text[key] = v
            else:
                bad.append(("not a number", f"{key}: {type(v).__name__}" +
                            (f" ({e})" if str(e) != type(v).__name__ else "")))


def _encoder():
    """``json.dumps`` of a record, compact, NaN refused, odd objects as their
    repr: json's C encoder made once (``JSONEncoder.encode`` makes it again on
    every call, a third of the writer's time on small records). No circular
    check: records are built here, and configs are bounded in depth."""
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii
        make = c_make_encoder(None, repr, encode_basestring_ascii, None, ":", ",", False, False, False)
    except (ImportError, TypeError):   # no C accelerator (PyPy): the plain way
        make = None
    if make is None:
        return json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=repr).encode
    join = "".join
    return lambda obj: join(make(obj, 0))


_dumps = _encoder()


# ---------------------------------------------------------------- model

def describe_model(model):
    """The model's flexibility: parameter counts, depth, width, input features.

    Depth counts weight tensors of rank >= 2 (linear and conv layers); width is
    the largest output size among them; input features is the input size of
    the first. Duck-typed on ``named_parameters()``.
    """
    total = trainable = 0
    layers, outs, first_in = [], [], None
    for name, p in model.named_parameters():
        n = int(p.numel())
        total += n
        if getattr(p, "requires_grad", True):
            trainable += n
        shape = tuple(p.shape)
        if len(shape) >= 2:
            layers.append(name)
            outs.append(int(shape[0]))
            if first_in is None:
                first_in = int(shape[1])
    info = {"params": total, "trainable_params": trainable, "depth": len(layers), "layers": layers}
    if outs:
        hidden = outs[:-1] or outs
        info["width"] = max(hidden)
        info["input_features"] = first_in
    return info


# ---------------------------------------------------------------- drop accounting

class _Drops:
    """What could not be recorded, counted by reason, and said once per
    reason on stderr. Any thread counts (an append to a deque: atomic), the
    writer thread folds the counts together and writes them into the stream,
    and a reader adds what is not folded yet. No lock anywhere: a signal
    handler's close() waits on the writer, and the thread it interrupted may
    have been counting."""

    def __init__(self, warn):
        self._warn = warn
        self._new = collections.deque()   # (reason, n), not folded yet
        self._folded = {}
        self._reported = 0                # the total the stream last said

    def count(self, reason, n=1, message=None):
        if n:
            self._new.append((reason, n))
        self._warn(message or f"could not record {n} item(s): {reason}; the count is kept in the stream", key=reason)

    def fold(self):
        """(total, {reason: count}), folding in the new counts: the writer thread only."""
        new, folded = self._new, self._folded
        while new:
            reason, n = new.popleft()
            folded[reason] = folded.get(reason, 0) + n
        return sum(folded.values()), dict(folded)

    def report(self, now):
        """A ``dropped`` record when the total moved since the stream last
        said it, else None (the writer thread only)."""
        total, reasons = self.fold()
        if total == self._reported:
            return None
        self._reported = total
        return {"type": "dropped", "time": now, "count": total, "reasons": reasons}

    def reported(self, total):
        """The stream has just said ``total`` (in a record of its own)."""
        self._reported = total

    def reasons(self):
        """``{reason: count}`` from any thread (exact once the writer is done)."""
        out = dict(self._folded)
        for reason, n in tuple(self._new):   # copied in one C call: no append in between
            out[reason] = out.get(reason, 0) + n
        return out


# ---------------------------------------------------------------- the gradient watch

class _FreshGrad:
    """What a gradient hook reads of a parameter (``.grad``, ``.norm()``),
    for torch without post-accumulate hooks: the fresh gradient and the
    parameter's norm. One class for all: building one per backward pass
    would pile up classes for the garbage collector."""

    __slots__ = ("grad", "norm")

    def __init__(self, grad, norm):
        self.grad, self.norm = grad, norm


class _GradWatch:
    """Hooks on a model's parameters that, every ``every`` backward passes,
    keep each layer's gradient norm, weight norm and share of dead units
    (rows of a weight whose gradient is exactly zero) as tensors, computed
    where the gradient is, without a sync. log() takes what is pending with
    its step (:meth:`take`); the writer thread reads the tensors and builds
    the ``grads`` record (:meth:`record`)."""

    def __init__(self, warn):
        self._warn = warn
        self.pending = {}      # layer -> {"grad", "weight", "zero_rows"}: tensors, since the last take()
        self.layers = []       # the watched layers, in model order
        self._handles = []

    def hook(self, torch, model, every):
        self.layers = [n for n, p in model.named_parameters() if p.requires_grad]
        for name, p in model.named_parameters():
            if p.requires_grad:
                self._handles.append(self._hook(torch, name, p, every))

    def _hook(self, torch, name, param, every):
        count = [0]
        matrix = param.dim() >= 2
        pending = self

        def on_grad(p):
            count[0] += 1
            if (count[0] - 1) % every:
                return
            try:
                with torch.no_grad():
                    g = p.grad
                    if g is None:
                        return
                    entry = {"grad": g.norm(), "weight": p.norm()}
                    if matrix:
                        entry["zero_rows"] = (g.flatten(1).abs().amax(1) == 0).float().mean()
                    pending.pending[name] = entry
            except Exception as e:  # noqa: BLE001
                self._warn(f"gradient hook failed on {name}: {e!r}")

        if hasattr(param, "register_post_accumulate_grad_hook"):
            return param.register_post_accumulate_grad_hook(on_grad)

        def on_plain_grad(g, p=param):  # older torch: the hook sees the fresh gradient
            on_grad(_FreshGrad(g, p.norm))
        return param.register_hook(on_plain_grad)

    def take(self, step, t):
        """The queue item of what the hooks kept since the last take()."""
        pending, self.pending = self.pending, {}
        return {_KIND: _GRADS, _STEP: step, _TIME: t, _SPLIT: pending}

    def remove(self):
        for h in self._handles:
            try:
                h.remove()
            except Exception:  # noqa: BLE001
                pass
        self._handles = []

    def record(self, step, t, pending, small):
        """The ``grads`` record of ``pending`` (in the writer thread), or None."""
        layers, total = {}, 0.0
        for name in self.layers:
            entry = pending.get(name)
            if entry is None:
                continue
            out = {}
            for k, v in entry.items():
                try:
                    out[k] = _number(v)
                except Exception:  # noqa: BLE001
                    continue
            g = out.get("grad")
            if isinstance(g, (int, float)):
                total += float(g) ** 2
            layers[name] = out
        if not layers:
            return None
        norm = math.sqrt(total) if math.isfinite(total) else _nonfinite(total)
        return {"type": "grads", "step": step, "time": t, "norm": norm, "layers": {} if small else layers}


# ---------------------------------------------------------------- sinks

class _FileSink:
    """Appends whole lines to a file with raw ``os.write`` (no userspace buffer
    a forked child could flush twice). A write cut short by a full disk is
    rolled back, so the file only ever holds whole lines. A file (or its
    folder) deleted under the writer is noticed before the next write and
    started again at the same path with the run's header, so what comes
    after the deletion is not written into a file nobody can open."""

    def __init__(self, path, header=None, fresh=False, moved=None):
        self.path = path
        self.header = header  # () -> the header line, to start a recreated file with
        # a name the hook made (not the user's path=): the first open makes a
        # new file, and if another process made one of that name (two
        # processes of one run id, name and second) takes the next free name,
        # ``~2.jsonl`` and on, told to ``moved``; the two never share a file
        self.fresh = fresh
        self.moved = moved
        self.fd = None
        self.broken_tail = False
        self.recreated = 0

    def _open_fresh(self, flags):
        base, ext = os.path.splitext(self.path)
        for n in range(1, 1000):
            # ~N sorts after the first (a folder read in name order reads them as they started)
            path = self.path if n == 1 else f"{base}~{n}{ext}"
            try:
                fd = os.open(path, flags | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            if path != self.path:
                self.path = path
                if self.moved is not None:
                    self.moved(path)
            return fd
        return os.open(self.path, flags, 0o644)   # a thousand taken: share the first, as before

    def write(self, data):
        """Write ``data`` (whole lines); return how many bytes of it are safely
        written (always on a line boundary) and raise nothing but OSError."""
        if self.fd is not None:
            try:
                gone = os.fstat(self.fd).st_nlink == 0
            except OSError:
                gone = True
            if gone:
                self.close()
                self.recreated += 1
        if self.fd is None:
            d = os.path.dirname(self.path)
            if d:
                os.makedirs(d, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            if self.fresh:
                self.fresh = False
                self.fd = self._open_fresh(flags)
            else:
                self.fd = os.open(self.path, flags, 0o644)
            head = self.header() if self.recreated and self.header else None
            if head and os.fstat(self.fd).st_size == 0:
                os.write(self.fd, head)
        if self.broken_tail:
            os.write(self.fd, b"\n")
            self.broken_tail = False
        done = 0
        # released on the way out, error or not: ``data`` may be the run's
        # backlog, a bytearray that cannot be resized while a view of it lives
        with memoryview(data) as view:
            try:
                while done < len(data):
                    done += os.write(self.fd, view[done:])
            except OSError:
                cut = data.rfind(b"\n", 0, done) + 1
                if done > cut:
                    try:
                        os.ftruncate(self.fd, os.lseek(self.fd, 0, os.SEEK_END) - (done - cut))
                    except OSError:
                        self.broken_tail = True  # the next write starts a fresh line
                if cut == 0:
                    raise
                return cut
        return done

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def parse_address(addr):
    """``host:port``, ``tcp://host:port``, ``unix:/path`` or ``unix:///path``
    -> (family, address)."""
    if addr.startswith("unix:"):
        path = addr[5:]
        if path.startswith("//"):
            path = path[2:]
        return socket.AF_UNIX, path
    if addr.startswith("tcp://"):
        addr = addr[6:]
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bad address {addr!r}: expected HOST:PORT or unix:/PATH")
    host = host.strip("[]") or "127.0.0.1"
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, int(port))


#: The socket handshake's version (docs/stream-format.md, "Over a socket").
#: 2: challenge and response; the token itself never crosses the wire.
HANDSHAKE = 2


def handshake_proof(key, label, *parts):
    """HMAC-SHA256 under ``key`` (bytes) of ``label`` and ``parts`` (str),
    in hex: what a side of the socket handshake shows to prove that it holds
    a secret without sending it. The label keeps one side's proof from
    passing for the other's."""
    return hmac.new(key, "\n".join(("tui-monitor", label) + parts).encode(), hashlib.sha256).hexdigest()


def shared_token(token=None, token_file=None):
    """The socket token as bytes, or None without one: ``token``, else the
    content of ``token_file`` (surrounding whitespace dropped: a file written
    with ``echo`` ends in a newline). Raises OSError when the file cannot be
    read and ValueError when it is empty."""
    if token is None and token_file:
        with open(token_file, "rb") as f:
            token = f.read(4096).strip()
        if not token:
            raise ValueError(f"the token file {token_file} is empty")
    if token is None or token in ("", b""):
        return None
    return token.strip().encode() if isinstance(token, str) else bytes(token).strip()


class _HandshakeError(ConnectionError):
    """The listener is not one to stream to (another handshake, no proof)."""


class _SocketSink:
    """Streams lines to a listener with the handshake of the spec (hello,
    challenge, auth, welcome, then records and acks). Keeps the last ``cap``
    records, acknowledged or not, so a listener started late or restarted (it
    answers ``have: -1``) still gets the history; a reconnect resumes the
    stream with its session secret and resends only what the listener lacks.
    With a token, the listener must prove that it knows it before anything is
    sent. Runs its own thread so a slow or absent listener never delays the
    file."""

    def __init__(self, run, address, token=None, cap=100_000):
        self.run, self.address, self.cap = run, address, cap
        self.family, self.addr = parse_address(address)
        # the token: given, else $TUI_MONITOR_TOKEN, else $TUI_MONITOR_TOKEN_FILE's content
        env = os.environ
        token, path = token or env.get("TUI_MONITOR_TOKEN"), env.get("TUI_MONITOR_TOKEN_FILE")
        try:
            self.key = shared_token(token, path)
            if not token and path and os.stat(path).st_mode & 0o077:
                run._warn(f"the token file {path} can be read by other users: chmod 600 {path}",
                          key="socket token file")
        except (OSError, ValueError) as e:
            self.key = None
            run._warn(f"cannot read the socket token: {e}; connecting without one", key="socket token")
        # (id, secret) of the stream the listener opened for this run: only
        # this process can resume it; the secret never crosses the wire
        self.session = None
        self.buf = collections.deque()   # (seq, line), the last ``cap`` records
        # put() runs in the writer thread and the sending loop in this sink's
        # own: a deque iterated while another thread appends raises, so the
        # buffer is only touched under this lock.
        self.lock = threading.Lock()
        self.backoff = 0.5
        self.overflow = 0
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.connected = False
        self.acked = -1
        self.deadline = float("inf")
        self.thread = threading.Thread(target=self._loop, name="tui-monitor-socket", daemon=True)
        self.thread.start()

    def put(self, seq, line):
        with self.lock:  # make room first: the buffer never holds more than cap, even for an instant
            if self.cap <= 0:  # keeps nothing: the record is pushed out as it comes
                old = seq
            else:
                old = self.buf.popleft()[0] if len(self.buf) >= self.cap else None
                self.buf.append((seq, line))
        if old is not None:
            self.overflow += 1
            if old > self.acked and self.run._file is None:  # never delivered, and no file holds it
                self.run._drop("socket buffer full", 1)
        self.wake.set()

    def unsent(self, sent):
        """The buffered (seq, line) pairs after ``sent``, oldest first: a
        snapshot taken under the lock (the unsent records are the newest)."""
        batch = []
        with self.lock:
            for seq, line in reversed(self.buf):
                if seq <= sent:
                    break
                batch.append((seq, line))
        batch.reverse()
        return batch

    def delivered(self):
        with self.lock:
            return not self.buf or self.acked >= self.buf[-1][0]

    def _loop(self):
        sock = None
        while True:
            try:
                sock = socket.socket(self.family, socket.SOCK_STREAM)
                sock.settimeout(5)
                sock.connect(self.addr)
                self._session(sock)
                self.backoff = 0.5
            except _HandshakeError as e:  # each reason once: they say what to change
                self.run._warn(f"not streaming to {self.address}: {e}", key=f"handshake {str(e)[:40]}")
            except Exception as e:  # noqa: BLE001 - the listener is someone else's process
                self.run._warn(f"cannot stream to {self.address}: {e}; keeping up to {self.cap} records to resend")
            finally:
                self.connected = False
                try:
                    sock.close()
                except Exception:
                    pass
            if self.stop.is_set():  # closing: retry briefly until delivered or out of time
                if self.delivered() or time.monotonic() >= self.deadline:
                    return
                time.sleep(0.1)
                continue
            self.stop.wait(self.backoff)
            self.backoff = min(self.backoff * 2, 30.0)

    def _session(self, sock):
        # pid and start say which process this is; the nonce, with the
        # listener's, makes every proof of this connection its own
        mine = secrets.token_hex(16)
        hello = {"type": "hello", "v": FORMAT_VERSION, "handshake": HANDSHAKE, "run_id": self.run.run_id,
                 "rank": self.run.rank, "pid": self.run._header.get("pid"),
                 "start": self.run._header.get("start"), "nonce": mine}
        sock.sendall((_dumps(hello) + "\n").encode())
        challenge, after = self._reply(sock, b"", "challenge")
        theirs = challenge.get("nonce")
        if not isinstance(theirs, str) or not 16 <= len(theirs) <= 128 or not theirs.isascii():
            raise _HandshakeError("the listener's challenge has no valid nonce")
        auth = {"type": "auth"}
        if self.key is not None:
            proof = challenge.get("proof")
            if not (isinstance(proof, str) and proof.isascii()
                    and hmac.compare_digest(proof, handshake_proof(self.key, "listener", mine, theirs))):
                raise _HandshakeError("it did not prove that it knows the token (another program may hold "
                                      "that address); nothing was sent to it")
            auth["proof"] = handshake_proof(self.key, "writer", mine, theirs)
        elif challenge.get("token"):
            raise _HandshakeError("it asks for a token: set TUI_MONITOR_TOKEN or TUI_MONITOR_TOKEN_FILE "
                                  "(or init(token=...)) to the listener's")
        if self.session is not None:  # only this process can continue its stream
            auth["session"] = self.session[0]
            auth["resume"] = handshake_proof(self.session[1], "resume", mine, theirs)
        sock.sendall((_dumps(auth) + "\n").encode())
        welcome, after = self._reply(sock, after, "welcome")
        have, sid = welcome.get("have"), welcome.get("session")
        if type(have) is not int or not isinstance(sid, str) or not 0 < len(sid) <= 128:
            raise ConnectionError(f"a welcome without a valid have and session: {welcome!r:.200}")
        if self.session is None or self.session[0] != sid:  # a new stream (a listener restarted since knows less)
            self.session = (sid, bytes.fromhex(handshake_proof(self.key or b"", "session", mine, theirs, sid)))
        self.acked = have
        self.connected = True
        self.backoff = 0.5  # welcomed: a later drop retries soon, however many failures came before
        sock.settimeout(30)  # a listener that stops reading for this long is reconnected
        # a selector, not select.select: a training process often holds over
        # 1024 descriptors (data files, workers), and select() cannot wait on those
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            self._send_and_ack(sock, sel, sent=have, pending=after)

    def _reply(self, sock, pending, expected):
        """The listener's next message (a dict of type ``expected``) and the
        bytes that came after it; a refusal or another message raises."""
        line, after = self._read_line(sock, pending)
        try:
            msg = json.loads(line or b"null")
        except ValueError:
            msg = None
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "refused":
            reason = str(msg.get("reason"))[:500]
            if msg.get("handshake") is None:  # a listener older than this handshake
                raise _HandshakeError(f"refused ({reason}): the listener speaks an older handshake; "
                                      "update tui-monitor there")
            raise ConnectionError(f"refused: {reason}")
        if kind == "welcome" and expected == "challenge":
            raise _HandshakeError("the listener speaks an older handshake (it sent no challenge); "
                                  "update tui-monitor there")
        if kind != expected or msg.get("handshake") != HANDSHAKE:
            raise _HandshakeError(f"expected a {expected} of handshake {HANDSHAKE}, got {line[:200]!r}")
        return msg, after

    @staticmethod
    def _read_line(sock, buf):
        """The listener's next line and the bytes that came after it. Read
        with recv, not a buffered reader: an ack sent right behind the welcome
        often arrives in the same packet, and a reader would keep it to itself."""
        while True:
            end = buf.find(b"\n")
            if end >= 0:
                return buf[:end], buf[end + 1:]
            if len(buf) > MAX_LINE:
                raise ConnectionError(f"no line in the first {len(buf)} bytes")
            chunk = sock.recv(65536)
            if not chunk:
                return buf, b""
            buf += chunk

    def _send_and_ack(self, sock, sel, sent, pending=b""):
        pending = self._take_acks(pending)  # what came with the welcome
        while True:
            batch = self.unsent(sent)
            if batch:
                sock.sendall(b"".join(line for _, line in batch))
                sent = batch[-1][0]
            if self.stop.is_set() and self.delivered():
                return
            if sel.select(0.2):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("listener closed the connection")
                pending = self._take_acks(pending + chunk)
            elif not batch:
                self.wake.wait(0.5)
                self.wake.clear()
            if self.stop.is_set() and time.monotonic() > self.deadline:
                return

    def _take_acks(self, pending):
        """Handle the whole lines in ``pending``; return the unfinished rest."""
        *lines, rest = pending.split(b"\n")
        for raw in lines:
            msg = json.loads(raw)
            if msg.get("type") == "ack":
                self._ack(int(msg["seq"]))
        return rest

    def _ack(self, seq):
        self.acked = max(self.acked, seq)

    def close(self, timeout):
        self.deadline = time.monotonic() + timeout
        self.stop.set()
        self.wake.set()
        self.thread.join(timeout + 0.5)
        with self.lock:
            unacked = sum(1 for seq, _ in self.buf if seq > self.acked)
        if not unacked:
            return
        if self.run._file is None:  # nowhere else: they are lost, and said so
            self.run._drop("not acknowledged by the listener", unacked,
                           f"{unacked} record(s) were not acknowledged by the listener at {self.address} "
                           f"before close() gave up after {timeout:g} s; counted as dropped")
        else:
            self.run._warn(f"{unacked} record(s) were not acknowledged by the listener at {self.address} "
                           f"before close() gave up after {timeout:g} s; the file {self.run.path} has them",
                           key="socket unacknowledged")


# ---------------------------------------------------------------- the writer

#: On ranks other than 0, the default stream keeps only what the multi-rank
#: view needs (losses, gradient norms, step and data times, memory).
_SMALL_KEYS = ("loss", "grad", "time", "mem")
#: The writer writes what it has converted every _BATCH records or
#: _BATCH_SECONDS, whichever comes first.
_BATCH, _BATCH_SECONDS = 2000, 0.05


def _wait_until(condition, timeout):
    """Poll ``condition`` until it holds (True) or ``timeout`` s pass (False;
    None: no limit). It only sleeps, holding no lock: a close() in a signal
    handler waits on the writer this way, and the thread it interrupted may
    be inside any threading primitive."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.0005
    while not condition():
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            pause = min(pause, left)
        time.sleep(pause)
        pause = min(pause * 2, 0.01)
    return True


def _main_thread_where(depth=3):
    """Where the main thread is now, innermost first (``file:line in
    function``): in a quiet loop's heartbeat, it tells a rank stuck in a
    collective from one stuck loading data. Only runs while the loop is quiet."""
    try:
        f = sys._current_frames().get(threading.main_thread().ident)
        where = []
        while f is not None and len(where) < depth:
            where.append(f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno} in {f.f_code.co_name}")
            f = f.f_back
        return where
    except Exception:  # noqa: BLE001
        return []


class _Writer:
    """The run's writer thread, the one that converts what log() queued,
    encodes it and writes it: a pass every ``flush_every`` s or when flush()
    asks, and, once close() has handed it the end record, the last pass and
    the end. Nobody else converts or writes, so nobody else waits on a value
    slow to read or a stalled disk: close() and flush() wait for this thread,
    up to their timeouts, by polling what it sets (see :func:`_wait_until`).

    Lines go to the file sink (a full disk's lines are held in a backlog and
    retried, up to ``max_queue``, then counted) and to the socket sink."""

    def __init__(self, run, fresh=False):
        """``run``'s path, sinks and settings; ``fresh``: the path is a name
        the hook made (see _FileSink)."""
        self.run, self.path, self.socket, self.sampler = run, run.path, run._socket, run._sys
        self.grads, self.drops = run._grads, run._lost
        self.flush_every, self.heartbeat_every, self.max_queue, self.small = (run.flush_every, run.heartbeat_every,
                                                                               run.max_queue, run.small)
        self.q = collections.deque()   # what log() queues (dicts: see _KIND)
        self.file = _FileSink(self.path, lambda: self._header_line, fresh, self._moved) if self.path else None
        self._header_line = None
        self._seq = 0
        self._last_hb = time.time()    # heartbeats come heartbeat_every after the last log or heartbeat
        # encoded lines the file sink has not taken yet (a full disk), oldest
        # first: appended to in place and retried from the front, never rebuilt
        self._backlog = bytearray()
        self._backlog_lines = 0
        self._hold_reason = None
        # Woken through a C-level queue: no Python-level lock that a thread
        # interrupted by a signal could hold while the handler's close() waits here.
        self._wake = queue.SimpleQueue()
        self._passes = [0, 0]          # passes started, done (flush() waits on these)
        self._end = None               # the end record, from close()
        self._deadline = float("inf")  # close()'s: when the last pass stops writing and counts the rest
        self._waited_for = True        # whether close() still waits for the end
        self._socket_timeout = 2.0
        self._finished = False
        self.thread = threading.Thread(target=self._loop, name="tui-monitor-writer", daemon=True)

    # -- asked by the run (any thread) -------------------------------------

    def wake(self):
        self._wake.put(None)

    def flush(self, timeout):
        passes = self._passes
        target = passes[0] + 1     # the next pass to start takes all logged so far
        self.wake()
        _wait_until(lambda: passes[1] >= target or self.run.state is not _OPEN, timeout)

    def end(self, record, timeout, socket_timeout):
        """Take the end record. The last pass stops writing a little before
        close()'s ``timeout`` is out, so that the end still goes out in time."""
        self._socket_timeout = socket_timeout
        if timeout is not None:
            self._deadline = time.monotonic() + max(0.0, timeout - min(timeout / 4, 0.5))
        self._end = record

    def given_up(self):
        """close() returns without the end: this thread takes its time."""
        self._waited_for = False

    def forget(self):
        """In a forked child: the parent's queue, backlog and sockets are not this process's to write."""
        self.q.clear()
        self._backlog, self._backlog_lines = bytearray(), 0
        self.socket = None

    # -- the thread --------------------------------------------------------

    def _loop(self):
        run = self.run
        first = True   # the first pass at once: the header reaches the stream right after init
        while run.state is _OPEN:
            if not first:
                self._sleep(self.flush_every)
                if run.state is not _OPEN:
                    break
            first = False
            self._passes[0] += 1
            try:
                self._pass()
            except Exception as e:  # noqa: BLE001 - a bug here must not kill the writer
                run._warn(f"writer error: {e!r}")
            self._passes[1] += 1
        if run.state is _CLOSING:
            self.finish()

    def _sleep(self, seconds):
        """Until woken (flush(), close()) or ``seconds`` pass."""
        try:
            self._wake.get(timeout=seconds)
            while True:
                self._wake.get_nowait()
        except queue.Empty:
            pass

    def finish(self):
        """The end of the stream, once: the last pass with the end record,
        what the file never took counted, the file closed (state ``ended``),
        then the socket sink's time to deliver it (``closed``). In this
        thread, or in close() where this thread is gone. Returns whether this
        call did it."""
        if self._finished:
            return False
        self._finished = True
        run = self.run
        try:
            self._pass(final=True)
        except Exception as e:  # noqa: BLE001 - close() never raises into the caller
            run._warn(f"writer error: {e!r}")
        if self._backlog_lines:   # the file never took them: say so, at least in the count
            unwritten, self._backlog, self._backlog_lines = self._backlog_lines, bytearray(), 0
            self.drops.count(self._hold_reason, unwritten)
        # Logged by another thread in the last instant of the end: too late,
        # but counted. The mark stays at the front for good: what a log()
        # queues behind it, that log() counts itself (Run._logged_late).
        q = self.q
        q.append(_LAST)
        late = 0
        while q[0] is not _LAST:
            q.popleft()
            late += 1
        if late:
            self.drops.count("logged during close()", late)
        if self.file is not None:
            self.file.close()
        run.state = _ENDED
        if self.socket is not None:   # the end went to the sink just now: give it its time too
            self.socket.close(timeout=self._socket_timeout)
        run.state = _CLOSED
        return True

    def _pass(self, final=False):
        """One pass. It takes what was queued when it began, not what comes
        while it runs (a caller logging faster than this thread writes would
        otherwise hold it in one pass for good, nothing written), and writes
        it in batches as it goes. Any pass stops once close()'s time is
        nearly out (close() may come in the middle of a long one); ``final``:
        the last pass, which also takes what other threads log meanwhile,
        ends with the end record and, once close()'s time is nearly out,
        counts what it has not got to."""
        q = self.q
        left = len(q)
        records = 0
        lines = []
        while left:
            if lines:   # the batch before: written as the pass goes on
                self._deliver(lines)
                lines = []
            started = time.monotonic()
            while left and len(lines) < _BATCH:
                left -= 1
                payload = q.popleft()
                try:
                    rec = self._record(payload)
                except Exception as e:  # noqa: BLE001 - one bad record must not cost the others
                    self.drops.count("bad record", 1, f"could not convert a logged record: {e!r}")
                    continue
                if rec is not None:
                    records += 1
                    lines.append(self._encode(rec))
                if self._late():
                    break
                if not len(lines) % 64 and time.monotonic() - started > _BATCH_SECONDS:
                    break
            if self._late():
                if final and q:
                    n = len(q)
                    q.clear()
                    self.drops.count("close() timed out", n, f"close() timed out: {n} records logged before it "
                                                             "were not written; the count is kept in the stream")
                break
            if final and not left:   # logged while closing, by another thread: still in time
                left = len(q)
        lines.extend(self._trailer(quiet=not records, final=final))
        self._deliver(lines)

    def _late(self):
        """Whether close() waits for the end and its time is nearly out (see
        end(); the deadline counts once the run is no longer open, as the end does)."""
        return self._waited_for and self.run.state is not _OPEN and time.monotonic() > self._deadline

    def _trailer(self, quiet, final):
        """What a pass writes after the records: a system sample when one is
        due, a heartbeat when the loop is quiet, the drop count when it moved,
        and, in the last pass, the end."""
        run, lines, now = self.run, [], time.time()
        if self.sampler is not None and self._seq and self.sampler.due(now):
            try:
                sample = self._system_record(now)
            except Exception as e:  # noqa: BLE001 - a resource probe failing costs only its sample
                run._warn(f"system sample failed: {e!r}")
                sample = None
            if sample is not None:
                lines.append(self._encode(sample))
        # Timed from the last log or heartbeat, not the last write: system
        # samples (every 5 s by default) must not hold heartbeats back.
        if quiet and not final and self._seq and now - max(run._last_log or 0.0, self._last_hb) >= self.heartbeat_every:
            self._last_hb = now
            hb = {"type": "heartbeat", "time": now, "step": run._last_step}
            if run._last_log is not None:
                hb["last_log"] = run._last_log
            where = _main_thread_where()
            if where:
                hb["where"] = where
            lines.append(self._encode(hb))
        dropped = self.drops.report(now)
        if dropped is not None:
            lines.append(self._encode(dropped))
        if final:
            end = self._end
            end["dropped"] = self.drops.fold()[0]
            lines.append(self._encode(end))
        return lines

    # -- records -----------------------------------------------------------

    def _record(self, payload):
        pop = payload.pop
        kind, step, t, split = pop(_KIND, _METRICS), pop(_STEP), pop(_TIME), pop(_SPLIT, None)
        if kind == _META:
            return step
        if kind == _GRADS:
            return self.grads.record(step, t, split, self.small)
        if _ONLY_STR.issuperset(map(type, payload)) and _ONLY_FLOAT.issuperset(map(type, payload.values())) \
                and math.isfinite(sum(payload.values())):   # the common case: finite floats by name, as they are
            num, text, bad = payload, {}, ()
        else:
            num, text, bad = {}, {}, []
            _flatten(payload, "", num, text, bad)
        if self.small:
            num = {k: v for k, v in num.items() if any(w in k.lower() for w in _SMALL_KEYS)}
            text = {}
        if bad:
            for reason in sorted({reason for reason, _ in bad}):
                what = [w for r, w in bad if r == reason]
                self.drops.count(reason, len(what), ("dropped values that are not numbers: " if reason == "not a number"
                                                     else "dropped integers too long to write: ") + ", ".join(what[:5]))
        if not num and not text:
            return None
        if self.sampler is not None and split in (None, "train"):
            self.sampler.observe(step, t)
        rec = {"type": "metrics", "step": step, "time": t}
        if split is not None:
            rec["split"] = str(split)
        rec["values"] = num
        if text:
            rec["text"] = text
        return rec

    def _system_record(self, now):
        values = {}
        for k, v in self.sampler.sample(now).items():
            try:
                values[k] = _number(v)
            except TypeError:
                continue
        if not values:
            return None
        rec = {"type": "system", "time": now, "values": values}
        if self.run._last_step >= 0:
            rec["step"] = self.run._last_step
        return rec

    def _encode(self, rec):
        rec["seq"] = self._seq
        try:
            line = (_dumps(rec) + "\n").encode()
        except Exception as e:  # noqa: BLE001
            self.drops.count("unserialisable record", 1, f"could not encode a {rec.get('type')} record: {e!r}")
            line = b""
        if len(line) > MAX_LINE:
            self.drops.count("record over 1 MiB", 1, f"a {rec.get('type')} record of {len(line)} bytes was dropped")
        if not line or len(line) > MAX_LINE:  # the seq stays taken: a dropped record says why
            total, reasons = self.drops.fold()
            line = (_dumps({"type": "dropped", "seq": self._seq, "time": time.time(),
                            "count": total, "reasons": reasons}) + "\n").encode()
            self.drops.reported(total)
        if rec.get("type") == "run":
            self._header_line = line
        self._seq += 1
        if self.socket is not None:
            self.socket.put(rec["seq"], line)
        return line

    # -- the file ----------------------------------------------------------

    def _deliver(self, lines):
        if self.file is None:
            return
        if self._backlog:  # a full disk held lines back: the new ones go behind them
            for line in lines:
                self._backlog += line
            self._backlog_lines += len(lines)
            data = self._backlog
        else:
            data = b"".join(lines)
        if not data:
            return
        warn = self.run._warn
        try:
            recreated = self.file.recreated
            done = self.file.write(data)
            if self.file.recreated != recreated:
                warn(f"{self.path} was deleted; writing a new file there (it starts with the run's header)")
        except OSError as e:
            warn(f"cannot write {self.path}: {e.strerror or e}; will retry, training continues")
            reason = ("disk full" if e.errno == errno.ENOSPC
                      else f"write error ({errno.errorcode.get(e.errno, e.errno)})")
            self._hold(data, 0, reason)
            return
        except Exception as e:  # noqa: BLE001 - not the disk but a bug: keep the lines, counted if they never go
            warn(f"cannot write {self.path}: {e!r}; will retry, training continues")
            self._hold(data, 0, "write error")
            return
        if done < len(data):
            warn(f"cannot write all of {self.path} (disk full?); will retry, training continues")
            self._hold(data, done, "disk full")
        elif data is self._backlog:
            self._backlog = bytearray()
            self._backlog_lines = 0

    def _moved(self, path):
        """The file sink took another name (see _FileSink.fresh): say where."""
        self.path = self.run.path = path

    def _hold(self, data, done, reason):
        """Keep what the file did not take of ``data`` (``done`` bytes, whole
        lines, went in) for a retry, dropping (and counting) the oldest lines
        past the queue cap. Only the lines written or dropped are scanned or
        moved, never the whole backlog: it may be retried every pass for long."""
        self._hold_reason = reason
        if data is self._backlog:
            self._backlog_lines -= data.count(b"\n", 0, done)
            del data[:done]  # from the front of a bytearray: no copy of the rest
        else:
            self._backlog = bytearray(memoryview(data)[done:])
            self._backlog_lines = self._backlog.count(b"\n")
        over = self._backlog_lines - self.max_queue
        if over > 0:
            cut = 0
            for _ in range(over):
                cut = self._backlog.index(b"\n", cut) + 1
            del self._backlog[:cut]
            self._backlog_lines = self.max_queue
            self.drops.count(reason, over)


# ---------------------------------------------------------------- process hooks

_RUNS = []                     # the runs to end at exit, on a signal, on an uncaught exception
_STARTED = weakref.WeakSet()   # every run with a writer, ended or not (a fork must silence them all)
_PREV_HANDLERS = {}   # signal -> the handler _on_signal took the place of (called, or restored in a fork)
_hooked = False       # atexit, excepthook, at-fork: once a process (a fork inherits them)


def _register(run):
    _RUNS.append(run)
    _STARTED.add(run)
    _end_with_multiprocessing(run)
    _hook_process()
    if threading.current_thread() is threading.main_thread():   # only the main thread may set handlers
        _hook_signals()


def _hook_process():
    global _hooked
    if _hooked:
        return
    _hooked = True
    atexit.register(_at_exit)
    prev_hook = sys.excepthook

    def excepthook(etype, exc, tb):
        for r in list(_RUNS):
            r._exc = exc
        prev_hook(etype, exc, tb)
    sys.excepthook = excepthook
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _hook_signals():
    """SIGTERM and SIGINT end the runs (:func:`_on_signal`), from the first
    run started in the main thread: a first run started in another thread
    cannot set them, and the next one started in the main thread does."""
    if _PREV_HANDLERS:
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            prev = signal.getsignal(sig)
            if prev is signal.SIG_IGN or prev is None:
                continue
            _PREV_HANDLERS[sig] = prev   # before: a signal right after finds what to call
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):
            _PREV_HANDLERS.pop(sig, None)
    if _PREV_HANDLERS.get(signal.SIGTERM) is signal.SIG_DFL:  # else SIGTERM never killed by default
        _watch_for_untaken_sigterm()


#: Seconds a SIGTERM waits for the main thread to take it (see
#: :func:`_watch_for_untaken_sigterm`) before the runs are ended without it.
SIGTERM_GRACE = 2.0
_sigterm_taken = threading.Event()
_wakeup = []  # the wakeup pipe's (read, write) descriptors, while watched


def _watch_for_untaken_sigterm():
    """A Python signal handler runs in the main thread, between bytecodes:
    a main thread stuck in C code (a hung collective, a wait that retries)
    never runs it, so with the hook's handler installed a SIGTERM would leave
    the process alive where the default action would have killed it. Python's
    C-level handler writes the signal's number to a wakeup pipe from whatever
    thread took it; a thread here reads it and, when the main thread has not
    taken a SIGTERM within :data:`SIGTERM_GRACE` s, ends the runs and kills
    the process. Only where nobody else uses the wakeup fd (asyncio may)."""
    try:
        r, w = os.pipe()
        os.set_blocking(w, False)
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except (ValueError, OSError, AttributeError):
        return
    if old != -1:  # someone's own: leave it to them
        signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)
        return
    _wakeup[:] = [r, w]
    threading.Thread(target=_sigterm_watcher, args=(r,), name="tui-monitor-signals", daemon=True).start()


def _sigterm_watcher(fd):
    while True:
        try:
            data = os.read(fd, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        if signal.SIGTERM not in data or _sigterm_taken.wait(SIGTERM_GRACE):
            continue
        if signal.getsignal(signal.SIGTERM) is not _on_signal:  # a handler installed since keeps its own say
            continue
        done = _work_done(sys._current_frames().get(threading.main_thread().ident))
        for r in list(_RUNS):
            try:
                if done:
                    r.close(status="finished", timeout=1.0)
                else:
                    r._signal = "SIGTERM"
                    r.close(status="interrupted", signal_name="SIGTERM",
                            error="SIGTERM: the main thread did not take it (stuck in C code?); killed", timeout=1.0)
            except Exception:  # noqa: BLE001
                pass
        os.kill(os.getpid(), signal.SIGKILL)


def _on_signal(signum, frame):
    if signum == signal.SIGTERM:
        _sigterm_taken.set()
    name = signal.Signals(signum).name
    done = signum == signal.SIGTERM and _work_done(frame)
    if not done:
        for r in list(_RUNS):
            r._signal = name
    prev = _PREV_HANDLERS.get(signum)
    if callable(prev):
        return prev(signum, frame)
    # The default action would kill us without any cleanup: end the runs, then
    # die the default way so the exit status still says "killed by SIGTERM".
    for r in list(_RUNS):
        try:
            if done:
                r.close(status="finished", timeout=2.0)
            else:
                r.close(status="interrupted", signal_name=name, timeout=2.0)
        except Exception:  # noqa: BLE001
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _work_done(frame):
    """Whether a SIGTERM that interrupted ``frame`` (the main thread) came
    after the process's work was done, in a multiprocessing child:

    * a pool worker waiting for its next task: ``pool.terminate()`` (and so
      the end of a ``with Pool() as pool:`` block) stops idle workers with
      SIGTERM. Every frame from the interrupted one up to the pool's
      ``worker`` loop is then multiprocessing's own (a running task, even one
      waiting on a multiprocessing queue, has a frame of its own between);
    * a child already on multiprocessing's exit path (``util._exit_function``,
      which ends its runs), whatever it was interrupted in."""
    mp = sys.modules.get("multiprocessing")
    if mp is None or frame is None:
        return False
    base = os.path.dirname(mp.__file__) + os.sep
    pool, util = base + "pool.py", base + "util.py"
    only_mp = True
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_exit_function" and code.co_filename == util:
            return True
        only_mp = only_mp and code.co_filename.startswith(base)
        if only_mp and code.co_name == "worker" and code.co_filename == pool:
            return True
        frame = frame.f_back
    return False


def _end_with_multiprocessing(run):
    """A multiprocessing child started by fork (Linux's default) leaves
    through ``os._exit``: no atexit handler runs there, and its runs were
    left without an end. What does run is multiprocessing's own exit path
    (``Process._bootstrap`` calls ``util._exit_function`` once the target
    returns or raises, and that runs the ``Finalize`` callbacks registered
    with an exit priority): the run is ended there too. Only where
    multiprocessing is already imported (a child of it always is)."""
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    try:  # weakly: a run closed and dropped leaves nothing behind
        util.Finalize(run, _end_at_process_exit, args=(weakref.ref(run),), exitpriority=0)
    except Exception:  # noqa: BLE001
        pass


def _end_at_process_exit(ref):
    run = ref()
    if run is None:
        return
    exc = sys.exc_info()[1]   # the target's exception, on its way out of _bootstrap
    if exc is not None and not isinstance(exc, SystemExit) and run._exc is None:
        run._exc = exc
    try:
        run.close()
    except Exception:  # noqa: BLE001
        pass


def _at_exit():
    for r in list(_RUNS):
        try:
            r.close()
        except Exception:  # noqa: BLE001
            pass


def _after_fork_in_child():
    """A forked child (a DataLoader worker) must not write its parent's
    stream: neither an open run's nor one a close() left to its writer
    (no longer in _RUNS), whose writer thread is not in this process. Until
    it starts a run of its own, the child's signals are what they were
    before the hook: the thread that ends a process whose main thread cannot
    take a SIGTERM is not in the child, and without it a child stuck in C
    code would outlive a SIGTERM that would have killed it."""
    global _sigterm_taken
    for r in list(_STARTED):
        if r.state is not _CLOSED:
            r.state = _FORKED
            r._writer.forget()
            r._socket = None
    del _RUNS[:]
    for sig, prev in list(_PREV_HANDLERS.items()):
        try:
            if signal.getsignal(sig) is _on_signal:
                signal.signal(sig, prev)
        except (ValueError, OSError, TypeError):
            pass
    _PREV_HANDLERS.clear()   # a run started in the child's main thread sets them again
    _sigterm_taken = threading.Event()
    if _wakeup:  # the parent's pipe: the child's signals are not the parent's to read
        try:
            old = signal.set_wakeup_fd(-1)
        except (ValueError, OSError):  # cannot: leave the descriptors, never one the handler writes to closed
            return
        if old != _wakeup[1]:  # someone else's since (asyncio): theirs to keep
            signal.set_wakeup_fd(old)
        for fd in _wakeup:
            try:
                os.close(fd)
            except OSError:
                pass
        _wakeup[:] = []


# ---------------------------------------------------------------- the run: what a script holds

_STEP_MIN, _STEP_LIMIT = -(1 << 63), 1 << 63   # a step is a 64-bit integer
#: The queue holds at most max_queue records, and at most this many values a
#: record on average (a record of 50 values counts as 10 of 5).
_VALUES_PER_RECORD = 5


def _system_sampler(every):
    """The writer thread's resource sampler (tui_monitor/_sysinfo.py), or None
    where it cannot be had: a copied hook finds it as tui_monitor_sysinfo.py
    beside itself (see hooks/README.md)."""
    if not every:
        return None
    try:
        if __package__:
            from ._sysinfo import SystemSampler
        else:
            from tui_monitor_sysinfo import SystemSampler
        return SystemSampler(every=every)
    except Exception:  # noqa: BLE001 - optional: no system records then
        return None


def distributed_info():
    """(rank, local rank, world size, job id) of this process, from
    ``torch.distributed`` when it is initialised (never imported here), else
    from the launcher's environment (torchrun, Lightning's ``GLOBAL_RANK``,
    SLURM, Open MPI, PMI). A launcher's rank variable counts even without its
    world-size variable (the world size is then 1)."""
    env = os.environ
    rank = world = None
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            rank, world = int(dist.get_rank()), int(dist.get_world_size())
    except Exception:  # noqa: BLE001
        pass
    if rank is None:
        for r, w in (("RANK", "WORLD_SIZE"), ("GLOBAL_RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"),
                     ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE")):
            if env.get(r, "").isdigit():
                rank = int(env[r])
                world = int(env[w]) if env.get(w, "").isdigit() else None
                break
    local = next((int(env[k]) for k in ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK")
                  if env.get(k, "").isdigit()), None)
    rank, world = rank or 0, max(world or 1, 1)
    job = None
    elastic = env.get("TORCHELASTIC_RUN_ID")
    if elastic and elastic.lower() != "none":
        job = f"torchrun-{elastic}"
    elif world > 1 and env.get("SLURM_JOB_ID"):
        job = f"slurm-{env['SLURM_JOB_ID']}" + (f".{env['SLURM_STEP_ID']}" if env.get("SLURM_STEP_ID") else "")
    elif world > 1 and env.get("MASTER_ADDR") and env.get("MASTER_PORT"):
        job = f"job-{env['MASTER_ADDR']}-{env['MASTER_PORT']}"
    return rank, local, world, job


class Run:
    """One training process's stream. Create it with :func:`init`.

    ``state`` is where it is in its life: ``open`` -> ``closing`` (close()
    called) -> ``ended`` (the end record written, the file closed) ->
    ``closed`` (a socket sink, if any, had its time to deliver it); ``off``
    when nothing is recorded, ``forked`` in a forked child."""

    def __init__(self, name=None, dir=None, config=None, model=None, *, to=None, token=None,
                 tags=None, flush_every=1.0, heartbeat_every=10.0, watch_every=50,
                 max_queue=1_000_000, run_id=None, path=None, ranks=None, system_every=5.0,
                 socket_buffer=100_000, rank=None, world_size=None):
        self._blank(name)
        # explicit arguments win over the environment, which wins over defaults
        env = os.environ
        self.rank, self.local_rank, self.world_size, job = distributed_info()
        if rank is not None:
            self.rank = self._option("rank", rank, int, self.rank, "detected")
        if world_size is not None:
            self.world_size = max(self._option("world_size", world_size, int, self.world_size, "detected"), 1)
        # every rank of one job shares the run id, so the monitor shows one job with N ranks
        self.run_id = _text(run_id or env.get("TUI_MONITOR_RUN_ID") or job or uuid.uuid4().hex[:12])
        script = os.path.splitext(os.path.basename(sys.argv[0] or "run"))[0]
        self.name = _text(name or env.get("TUI_MONITOR_NAME") or script or "run")
        ranks = ranks or env.get("TUI_MONITOR_RANKS", "all")
        if ranks not in ("all", "zero", "full"):
            self._warn(f"ranks must be 'all', 'zero' or 'full', not {_repr(ranks)}; using 'all'")
            ranks = "all"
        # "all": rank 0 full, the others a small stream; "full": every rank full; "zero": rank 0 only
        self.small = ranks == "all" and self.rank != 0
        self.flush_every = self._option("flush_every", flush_every, float, 1.0)
        self.heartbeat_every = self._option("heartbeat_every", heartbeat_every, float, 10.0)
        self.max_queue = self._option("max_queue", max_queue, int, 1_000_000)
        self._max_values = self.max_queue * _VALUES_PER_RECORD   # the queue's bound in values (see log())
        socket_buffer = self._option("socket_buffer", socket_buffer, int, 100_000)
        self._sys = _system_sampler(system_every)
        if self._sys is not None:
            self._sys.local_rank = self.local_rank  # which GPU a rank of a job computes on, unless watch() says
        start = time.time()
        header = {"type": "run", "v": FORMAT_VERSION, "run_id": self.run_id, "name": self.name,
                  "start": start, "host": socket.gethostname(), "pid": self._pid, "rank": self.rank,
                  "world_size": self.world_size, "config": _config(config), "tags": _tags(tags)}
        if self.local_rank is not None:
            header["local_rank"] = self.local_rank
        if job:
            header["job_id"] = job
        if self.small:
            header["small"] = True
        if model is not None:
            try:
                header["model"] = describe_model(model)
            except Exception as e:  # noqa: BLE001
                self._warn(f"could not describe the model: {e!r}")
        self._header = self._fit(header)
        if dir is None:
            dir = env.get("TUI_MONITOR_DIR", "runs")
        self.path = path
        fresh = False
        if self.path is None and dir:
            fresh = True
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)[:80]
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(start))
            rank = f"-rank{self.rank}" if self.world_size > 1 else ""
            self.path = os.path.join(str(dir), f"{safe}-{stamp}-{self.run_id[:6]}{rank}.jsonl")
        to = to or env.get("TUI_MONITOR_TO")
        if env.get("TUI_MONITOR_DISABLED") or (ranks == "zero" and self.rank != 0):
            return
        if to:
            try:
                self._socket = _SocketSink(self, to, token, cap=socket_buffer)
            except Exception as e:  # noqa: BLE001
                self._warn(f"cannot stream to {to!r}: {e}")
        self._writer = _Writer(self, fresh)
        self._q = self._writer.q
        self._q.append({_KIND: _META, _TIME: start, _STEP: header})
        self.state = _OPEN
        try:
            self._writer.thread.start()
        except BaseException:   # no thread to be had (interpreter shutting down): nothing recorded
            self.state = _OFF
            if self._socket is not None:
                self._socket.close(timeout=0)
            raise
        _register(self)
        if model is not None and watch_every:
            self.watch(model, every=watch_every, _describe="model" not in header)

    def _blank(self, name):
        """What every run has, one that records nothing too (``off``)."""
        self.state = _OFF
        self._warned = set()
        self._lost = _Drops(self._warn)
        self._grads = _GradWatch(self._warn)
        self._pid = os.getpid()
        self._last_step, self._last_log = -1, None
        self._signal = self._exc = None
        self._socket = self._writer = self._sys = None
        self.name, self.run_id, self.path, self._header = _text(name or "run"), "", None, {}
        self.rank, self.local_rank, self.world_size, self.small = 0, None, 1, False

    @classmethod
    def _unstarted(cls, name, error):
        """A run that records nothing, for an init() that could not start one:
        the training goes on, told why once."""
        run = cls.__new__(cls)
        run._blank(name)
        run._warn(f"could not start the run ({error!r}); training goes on without it")
        return run

    def _option(self, name, value, kind, default, said=None):
        """``kind(value)``, or ``default`` with a warning: a bad option never
        stops the training script."""
        try:
            return kind(value)
        except Exception:  # noqa: BLE001 - the caller's value
            what = "an integer" if kind is int else "a number"
            self._warn(f"{name}={_repr(value)} is not {what}; using {default!r}" + (f" ({said})" if said else ""),
                       key=f"option {name}")
            return default

    def _fit(self, header):
        """The header, made to fit in one line: a config, tags or model
        description that would make it longer than the line limit is
        replaced by a note saying so (the reader would skip the whole header,
        and the run would lose its name, id and process with it)."""
        for field in ("config", "tags", "model"):
            size = len(_dumps(header).encode())
            if size <= MAX_LINE - 4096:   # room for seq
                break
            n = len(_dumps(header.get(field)).encode())
            if n > 4096:
                header[field] = {"_dropped": f"{field} of {n} bytes is over the 1 MiB line limit"}
                self._warn(f"the {field} of {n} bytes is over the 1 MiB line limit; not recorded")
        if len(_dumps(header).encode()) > MAX_LINE - 4096:   # the name or the id itself
            for field in ("name", "run_id", "host"):
                if len(header[field]) > 1024:
                    self._warn(f"the run's {field} of {len(header[field])} characters is cut to 1024")
                    header[field] = header[field][:1024]
            self.name, self.run_id = header["name"], header["run_id"]
        return header

    # -- the hot path ------------------------------------------------------

    def log(self, values, step=None, split=None):
        """Record metric values at a step; returns at once.

        ``values`` maps names to numbers, numpy scalars or 0-dim tensors (CPU
        or CUDA: a CUDA value is copied on the device and read in the writer
        thread, no sync here); each is kept as it is at this call. ``split`` is
        ``"train"``, ``"val"`` or ``"test"``; when omitted, the monitor infers it
        from the names (``val_loss``, ``train/loss``) and defaults to train. With
        no ``step``, a train log advances the last step by one and a val/test
        log reuses it; a step that is no integer (``"100"`` is one) gets the
        automatic step, with a warning.
        """
        if self.state is not _OPEN:
            self._not_open()
            return
        try:
            t = _now()
            if step is None:
                step = self._last_step + 1 if split is None or split not in ("val", "test") else self._last_step
            elif type(step) is not int or not -0x8000000000000000 <= step <= 0x7FFFFFFFFFFFFFFF:   # 64 bits
                step = self._odd_step(step, split)
            self._last_step = step
            self._last_log = t
            q = self._q
            waiting = len(q)
            if waiting >= self.max_queue or waiting * len(values) >= self._max_values:
                self._lost.count("queue full", 1)
                return
            if self._grads.pending:
                q.append(self._grads.take(step, t))
            if type(values) is not dict:
                values = dict(values)
            # A copy, since loops often reuse one dict, with every value as it
            # is now: plain numbers and strings as they are, others read or
            # copied (see _captured). One look at each value's type when all
            # are plain; a new dict, not a copy, otherwise: a copy of a dict
            # holding tensors would be tracked by the garbage collector.
            for v in values.values():
                if type(v) not in _PLAIN:
                    rec = _captured(values)
                    break
            else:
                rec = values.copy()
            rec[_STEP] = step
            rec[_TIME] = t
            rec[_SPLIT] = split
            q.append(rec)
            if self.state is not _OPEN:   # closed meanwhile, by another thread
                self._logged_late(rec)
        except Exception as e:  # noqa: BLE001 - never raise into the training loop
            self._lost.count("bad log() call", 1, f"log() ignored a call it could not read: {e!r}")

    __call__ = log

    def _not_open(self):
        state = self.state
        if state is _CLOSING:   # another thread is in close()
            self._lost.count("logged during close()", 1)
        elif state is _FORKED:
            self._warn(f"log() in a forked child (pid {os.getpid()}) of the process that started run "
                       f"{self.name!r} (pid {self._pid}) is not recorded: start a run in the child with init()",
                       key="forked child")
        elif state is not _OFF:
            self._warn("log() after close() is ignored")

    def _logged_late(self, rec):
        """A record queued once close() had begun: the writer wrote or counted
        it, unless it lies behind the mark the writer leaves when it is done
        with the queue (see _Writer.finish); then it is counted here. The
        queue is looked at in one snapshot, by identity: never both, never
        neither."""
        for item in tuple(self._q):
            if item is rec:
                return
            if item is _LAST:
                self._lost.count("logged during close()", 1)
                return

    def _odd_step(self, step, split):
        """The integer step meant by a step that is not a plain int (a string,
        a float, a tensor), or the automatic step, with a warning, when there
        is none (the format's steps are 64-bit integers)."""
        try:
            value = int(step.strip()) if isinstance(step, str) else _capture(step)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if type(value) is int and _STEP_MIN <= value < _STEP_LIMIT:
                return value
            why = "is out of the format's range (64-bit)" if type(value) is int else "is not an integer"
        except Exception:  # noqa: BLE001 - the caller's value
            why = "is not an integer"
        auto = self._last_step if split in ("val", "test") else self._last_step + 1
        self._warn(f"step {_repr(step)[:100]} {why}; the automatic step is used ({auto}, then on from it)",
                   key="step")
        return auto

    def watch(self, model, every=50, _describe=True):
        """Record the model's flexibility and, every ``every`` backward passes,
        the global and per-layer gradient norms, weight norms and the share of
        units whose gradient is exactly zero (dead units)."""
        if self.state is not _OPEN:
            return
        try:
            if _describe:
                t = time.time()
                meta = {"type": "meta", "time": t, "model": describe_model(model)}
                self._q.append({_KIND: _META, _TIME: t, _STEP: meta})
            self._note_device(model)
            torch = sys.modules.get("torch")
            if torch is None or not every:
                return
            self._grads.hook(torch, model, int(every))
        except Exception as e:  # noqa: BLE001
            self._warn(f"watch() could not hook the model: {e!r}")

    def _note_device(self, model):
        """Tell the system sampler which GPU the model is on (it samples in
        the writer thread, where torch's per-thread current device is not the
        training's)."""
        if self._sys is None:
            return
        param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
        device = getattr(param, "device", None)
        if getattr(device, "type", None) != "cuda":
            return
        index = device.index
        if index is None:  # plain "cuda": this (the training) thread's current device
            index = sys.modules["torch"].cuda.current_device()
        self._sys.cuda_device = int(index)

    def flush(self, timeout=None):
        """Write everything logged so far now, rather than at the writer's
        next pass (every ``flush_every`` s); wait up to ``timeout`` s (None:
        as long as it takes) for it to be written."""
        if self.state is _OPEN:
            self._writer.flush(timeout)

    # -- what could not be recorded ----------------------------------------

    @property
    def dropped(self):
        """How many items could not be recorded (see :attr:`drop_reasons`)."""
        return sum(self._lost.reasons().values())

    @property
    def drop_reasons(self):
        """``{reason: count}`` of what could not be recorded."""
        return self._lost.reasons()

    def _drop(self, reason, n, message=None):
        self._lost.count(reason, n, message)

    def _warn(self, message, key=None):
        """Say ``message`` on stderr, once per ``key`` (its first words)."""
        key = key or message.split(":")[0]
        if key in self._warned:
            return
        self._warned.add(key)
        try:
            sys.stderr.write(f"tui-monitor: {message}\n")
        except Exception:  # noqa: BLE001
            pass

    @property
    def _seq(self):
        """How many records the writer has made (their ``seq`` numbers are 0 to this, less one)."""
        return self._writer._seq if self._writer is not None else 0

    @property
    def _file(self):
        """The file sink, or None (the socket sink asks: whether a file holds the records)."""
        return self._writer.file if self._writer is not None else None

    # -- the end -----------------------------------------------------------

    @property
    def closed(self):
        """Whether close() has been called (the run is closing, ended or closed)."""
        return self.state in (_CLOSING, _ENDED, _CLOSED)

    def close(self, status=None, error=None, signal_name=None, timeout=5.0, socket_timeout=2.0):
        """Write the end record, after everything logged so far. Called for
        you at interpreter exit, on an uncaught exception and on
        SIGTERM/SIGINT; idempotent. The writer thread writes the end: close()
        waits up to ``timeout`` s for it (None: as long as it takes); what
        the writer has not written shortly before then is counted in the end
        record instead (``close() timed out``), unless it is stuck inside
        one write or one value, and then it ends the stream itself when that
        returns. With a socket sink, close() then waits up to
        ``socket_timeout`` s for the listener to acknowledge the end. A
        close() that finds another under way (a signal handler that
        interrupted one, another thread) waits for the same end."""
        if self.state is _OPEN:
            end = self._end_record(status, error, signal_name)
            self._grads.remove()
            if self._grads.pending:   # the last gradients, at the last step
                self._q.append(self._grads.take(self._last_step, time.time()))
            self._writer.end(end, timeout, socket_timeout)
            # After the end is handed over (the writer reads it once it sees
            # closing), and only from open: another close() (another thread,
            # a signal handler) may have run its whole course while this one
            # built its end, and a state never goes back. The look and the
            # store have no call between them, so no other thread or signal
            # handler runs in between.
            if self.state is _OPEN:
                self.state = _CLOSING
            self._writer.wake()
        elif self.state not in (_CLOSING, _ENDED):
            return
        if not self._writer.thread.is_alive():   # the writer is gone (cannot be, but then nobody else would)
            self._writer.finish()
        if _wait_until(lambda: self.state is not _CLOSING, timeout):
            _wait_until(lambda: self.state is not _ENDED, socket_timeout + 1.0)
        else:
            self._writer.given_up()
            self._warn(f"close() waited {timeout:g} s for the writer, still busy writing {self.path}; "
                       "it writes the end record and closes the file when done, or the process exit ends it",
                       key="close timeout")
        if self in _RUNS:
            _RUNS.remove(self)

    finish = close

    def _end_record(self, status, error, signal_name):
        if status is None:
            exc = self._exc
            if exc is not None and not isinstance(exc, KeyboardInterrupt):
                status = "crashed"
                error = error or exc
            elif exc is not None or self._signal:
                status, signal_name = "interrupted", signal_name or self._signal or "SIGINT"
            else:
                status = "finished"
        end = {"type": "end", "time": time.time(), "status": status}
        if isinstance(error, BaseException):
            trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            end["error"] = {"type": type(error).__name__, "message": _text(error), "traceback": trace[-20000:]}
        elif error:
            end["error"] = {"type": "Error", "message": _text(error)}
        if signal_name:
            end["signal"] = signal_name
        if self._last_step >= 0:
            end["step"] = self._last_step
        return end

    def __enter__(self):
        return self

    def __exit__(self, etype, exc, tb):
        if exc is not None:
            self._exc = exc
        self.close()
        return False

    def __repr__(self):
        return f"<tui_monitor.Run {self.name!r} id={self.run_id} path={self.path!r} {self.state}>"


def init(name=None, dir=None, config=None, model=None, **options):
    """Start recording a run and return its :class:`Run`.

    ``dir`` is where the stream file goes (``$TUI_MONITOR_DIR`` overrides; a
    falsy value writes no file); ``to="HOST:PORT"`` or ``to="unix:/path"``
    also streams to a listener (``tui-monitor watch --listen``). ``model``
    records the model's flexibility and watches its gradients every
    ``watch_every`` backward passes (0 disables). ``config`` may be any
    mapping (a Hydra/OmegaConf ``DictConfig`` too), a dataclass or a
    namespace; it is written as a plain dict. Other options: ``tags`` (a dict,
    or a list of labels), ``flush_every`` (s), ``heartbeat_every`` (s),
    ``max_queue`` (records waiting for the writer, and 5x as many values, at
    most; past that they are counted as dropped), ``token`` (the listener's
    shared secret, never sent; default ``$TUI_MONITOR_TOKEN``, else the
    content of the file ``$TUI_MONITOR_TOKEN_FILE``), ``socket_buffer``
    (records kept for a listener that is slow, absent or restarted),
    ``run_id``, ``path``, ``system_every`` (s between resource samples: step
    time, CPU, memory, CUDA memory, GPU use; 0 turns them off).
    ``TUI_MONITOR_DISABLED=1`` turns the hook into a no-op. init() never
    raises: what it cannot use it says on stderr, and a run it cannot start
    records nothing.

    Under ``torch.distributed`` (torchrun, SLURM, MPI) every rank of a job
    shares one run id (the launcher's job id) and writes its own stream
    (``...-rankN.jsonl``). ``ranks="all"`` (default): rank 0 writes
    everything and the others a small stream (losses, gradient norms, times,
    memory, heartbeats) for the multi-rank view; ``"full"``: every rank
    writes everything; ``"zero"``: only rank 0 writes
    (``TUI_MONITOR_RANKS`` sets it too). ``rank=`` and ``world_size=`` override
    what is detected (``torch.distributed``, else the launcher's environment).
    """
    try:
        return Run(name=name, dir=dir, config=config, model=model, **options)
    except Exception as e:  # noqa: BLE001 - the training goes on, told why
        return Run._unstarted(name, e)
