# SPDX-License-Identifier: MIT
"""Support code shared by the fake InsTaG scripts and the fake pod tools.

Not part of InsTaG: this module exists only in the stand-in tree used by
instag-agent's tests.  Python 3 standard library only.

It provides
  * fault injection from $FAKE_INSTAG_CONTROL/<name> (fail, fail_at N,
    hang, slow MS, each optionally followed by "once"; hold),
  * an invocation log in $FAKE_INSTAG_STATE/calls.log,
  * the fake media formats (FAKEMEDIA video/audio, FAKENPY, FAKEIMG,
    FAKECKPT) and their readers; real media files (MP4, WAV, ...) are read
    with the real ffprobe (real_tool),
  * a tqdm look-alike that draws ascii bars on stderr with "\\r".
"""

import hashlib
import math
import os
import shlex
import signal
import struct
import subprocess
import sys
import time
import wave

MAGIC = "FAKEMEDIA v1"

# ------------------------------------------------------------- control ----


class Control:
    """What $FAKE_INSTAG_CONTROL/<name> asks this run to do."""

    def __init__(self, name, mode=None, arg=None, once=False, path=None):
        self.name = name
        self.mode = mode
        self.arg = arg
        self.once = once
        self.path = path
        self.failed = False

    def tick_seconds(self):
        if self.mode == "slow":
            return max(0.0, float(self.arg)) / 1000.0
        try:
            return max(0.0, float(os.environ.get("FAKE_INSTAG_TICK_MS", "3"))) / 1000.0
        except ValueError:
            return 0.003

    def _consume(self):
        if self.once and self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def start(self, fail):
        """Call once, after argument parsing.  fail() must not return."""
        if self.mode == "fail":
            self._consume()
            self.failed = True
            fail()
            raise SystemExit(1)
        if self.mode == "hang":
            self._consume()
            hang()
        if self.mode == "hold":
            hold(self.path)
        if self.mode == "noise":
            self._consume()
            noise(int(self.arg))
        if self.mode == "fail_at" and self.arg is not None and float(self.arg) <= 0:
            self._consume()
            self.failed = True
            fail()
            raise SystemExit(1)

    def progress(self, fraction, fail):
        """Call at each progress update with the fraction of work done."""
        t = self.tick_seconds()
        if t > 0:
            time.sleep(t)
        if self.mode == "fail_at" and not self.failed:
            if fraction * 100.0 >= float(self.arg):
                self._consume()
                self.failed = True
                fail()
                raise SystemExit(1)

    def fail_fraction(self):
        """The fraction at which fail_at triggers, or None."""
        if self.mode == "fail_at":
            return max(0.0, min(1.0, float(self.arg) / 100.0))
        return None


def hang():
    """Sleep until killed.  SIGTERM, SIGHUP and SIGINT all end the process."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # pragma: no cover
        pass
    while True:
        time.sleep(3600)


HOLD_MAX_S = 600


def noise(nbytes):
    """Write about nbytes of log lines to stderr (a long log, as a real
    run's warnings and progress bars make), then go on."""
    line = "fake-instag: noise %08d " + "." * 60 + "\n"
    done, i = 0, 0
    while done < nbytes:
        s = line % i
        sys.stderr.write(s)
        done += len(s)
        i += 1
    sys.stderr.flush()


def hold(path):
    """Wait until the control file at path is gone or no longer says
    "hold" (polled every 20 ms, for at most HOLD_MAX_S s: then exit 1), and
    go on as a normal run: the test decides when the run ends."""
    for _ in range(int(HOLD_MAX_S / 0.02)):
        try:
            with open(path) as f:
                words = f.read().split()
        except OSError:
            return
        if not words or words[0] != "hold":
            return
        time.sleep(0.02)
    sys.stderr.write("fake-instag: %s: still held after %d s\n" % (path, HOLD_MAX_S))
    raise SystemExit(1)


def control(name):
    """Read $FAKE_INSTAG_CONTROL/<name>; absent or empty means normal."""
    log_call(name)
    d = os.environ.get("FAKE_INSTAG_CONTROL")
    if not d:
        return Control(name)
    path = os.path.join(d, name)
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        return Control(name)
    once = False
    if words and words[-1] == "once":
        once = True
        words = words[:-1]
    if not words:
        return Control(name)
    mode = words[0]
    arg = words[1] if len(words) > 1 else None
    if mode in ("fail", "hang", "hold"):
        return Control(name, mode, None, once, path)
    if mode in ("fail_at", "slow"):
        try:
            float(arg)
        except (TypeError, ValueError):
            sys.stderr.write("fake-instag: %s: bad control line, ignored\n" % path)
            return Control(name)
        return Control(name, mode, arg, once, path)
    if mode == "noise":
        try:
            if int(arg) < 0:
                raise ValueError
        except (TypeError, ValueError):
            sys.stderr.write("fake-instag: %s: bad control line, ignored\n" % path)
            return Control(name)
        return Control(name, mode, arg, once, path)
    sys.stderr.write("fake-instag: %s: unknown control %r, ignored\n" % (path, mode))
    return Control(name)


def log_call(name, argv=None):
    """Append '<name>\\t<cwd>\\t<argv>' to $FAKE_INSTAG_STATE/calls.log."""
    state = os.environ.get("FAKE_INSTAG_STATE")
    if not state:
        return
    if argv is None:
        argv = sys.argv[1:]
    try:
        os.makedirs(state, exist_ok=True)
        with open(os.path.join(state, "calls.log"), "a") as f:
            f.write("%s\t%s\t%s\n" % (name, os.getcwd(),
                                      " ".join(shlex.quote(a) for a in argv)))
    except OSError:
        pass


def passthrough(name, shim_dir, fail_message, fail_status):
    """A shim for a real tool: record the call, honour
    $FAKE_INSTAG_CONTROL/<name> (fail -> fail_message on stderr and
    fail_status; hang; hold; slow MS and fail_at N act as at the start),
    then exec the real tool (the next <name> on PATH after shim_dir) with
    the same arguments.  Returns only on error (127)."""
    ctl = control(name)

    def fail():
        sys.stderr.write(fail_message + "\n")
        sys.exit(fail_status)
    ctl.start(fail)
    ctl.progress(0.0, fail)
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or os.path.realpath(d) == shim_dir:
            continue
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            os.execv(p, [p] + sys.argv[1:])
    sys.stderr.write("fake-instag: %s: no real %s on PATH\n" % (name, name))
    return 127

def state_dir(*parts):
    base = os.environ.get("FAKE_INSTAG_STATE") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "fake-instag-state-%d" % os.getuid())
    p = os.path.join(base, *parts)
    return p

# ---------------------------------------------------------------- GPUs ----


def gpu_count():
    """The pod's GPUs: the number in $FAKE_INSTAG_CONTROL/gpus, else
    $FAKE_INSTAG_GPU_COUNT, else 1."""
    d = os.environ.get("FAKE_INSTAG_CONTROL")
    if d:
        try:
            with open(os.path.join(d, "gpus")) as f:
                words = f.read().split()
            if words:
                return max(0, int(words[0]))
        except (OSError, ValueError):
            pass
    try:
        return max(0, int(os.environ.get("FAKE_INSTAG_GPU_COUNT", "1")))
    except ValueError:
        return 1


def visible_gpus():
    """The pod's GPU ids a CUDA program sees, in order.  As CUDA reads
    CUDA_VISIBLE_DEVICES: unset means every GPU; otherwise the listed ids
    up to the first one that is not a GPU of the pod (so "" and "-1" hide
    them all, and "3" on a one-GPU pod too)."""
    n = gpu_count()
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is None:
        return list(range(n))
    ids = []
    for w in cvd.split(","):
        w = w.strip()
        if not w.isdigit() or int(w) >= n or int(w) in ids:
            break
        ids.append(int(w))
    return ids

# -------------------------------------------------------------- hashes ----


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(65536)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def det_float(*key, lo=0.0, hi=1.0):
    """A deterministic pseudo-random float in [lo, hi) from key."""
    h = hashlib.sha256(repr(key).encode()).digest()
    v = struct.unpack(">Q", h[:8])[0] / float(1 << 64)
    return lo + (hi - lo) * v

# --------------------------------------------------------------- media ----


class Media:
    """A parsed media file: kind is 'video' or 'audio'.  real is True for a
    real file (probed with the real ffprobe, or a PCM WAV read here), False
    for a FAKEMEDIA placeholder."""

    def __init__(self, kind, fps=None, width=None, height=None, seconds=0.0,
                 audio=False, rate=None, channels=None, meta=None, wav=False,
                 codec=None, real=False, nframes=None):
        self.kind = kind
        self.fps = fps
        self.width = width
        self.height = height
        self.seconds = seconds
        self.audio = audio
        self.rate = rate
        self.channels = channels
        self.meta = meta or []
        self.wav = wav
        self.codec = codec
        self.real = real
        self.nframes = nframes

    @property
    def frames(self):
        if self.kind != "video":
            return 0
        if self.nframes is not None:
            return self.nframes
        return int(round(self.seconds * self.fps))


class MediaError(Exception):
    """Not media.  line, when set, is the real ffprobe's error line."""

    def __init__(self, msg, line=None):
        Exception.__init__(self, msg)
        self.line = line


def _num(v):
    return float(v) if "." in v or "e" in v else int(v)


def is_placeholder(path):
    """True if path is a FAKEMEDIA placeholder (a file the real tools
    cannot read); False for anything else, absent files included."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC) + 1) == (MAGIC + " ").encode()
    except OSError:
        return False


def real_tool(name):
    """Path of the real ffmpeg/ffprobe: $FAKE_INSTAG_REAL_<NAME> if set,
    else the first `name` on PATH that is not one of these shims (a shim
    imports this module).  None if there is none."""
    env = os.environ.get("FAKE_INSTAG_REAL_" + name.upper())
    if env:
        return env if os.access(env, os.X_OK) else None
    dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin"]
    for d in dirs:
        cand = os.path.join(d or ".", name)
        if not (os.path.isfile(cand) and os.access(cand, os.X_OK)):
            continue
        try:
            with open(cand, "rb") as f:
                if b"fakeinstag" in f.read(4096):
                    continue
        except OSError:
            continue
        return cand
    return None


def _rate(v):
    """'25/1' -> 25, '30000/1001' -> 29.97..., '0/0' or None -> None."""
    try:
        a, _, b = (v or "").partition("/")
        a, b = float(a), float(b or 1)
    except ValueError:
        return None
    if a <= 0 or b <= 0:
        return None
    r = a / b
    return int(r) if r == int(r) else r


def probe_real(path):
    """A real media file's streams, read with the real ffprobe.

    Raises MediaError with the real ffprobe's error line if it cannot read
    the file, or if there is no real ffprobe."""
    exe = real_tool("ffprobe")
    if exe is None:
        raise MediaError("the real ffprobe is not installed (Debian package "
                         "ffmpeg); it reads real media for the fakes",
                         "%s: the real ffprobe is needed to read it "
                         "(install the Debian package ffmpeg)" % path)
    p = subprocess.run([exe, "-v", "error", "-print_format", "json",
                        "-show_format", "-show_streams", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    err = p.stderr.decode("utf-8", "replace").strip().split("\n")
    if p.returncode != 0:
        raise MediaError("Invalid data found when processing input",
                         err[-1] if err and err[-1] else None)
    try:
        import json
        d = json.loads(p.stdout.decode("utf-8", "replace"))
    except ValueError:
        raise MediaError("Invalid data found when processing input")
    streams = d.get("streams", [])
    fmt = d.get("format", {})
    v = [s for s in streams if s.get("codec_type") == "video" and
         not s.get("disposition", {}).get("attached_pic")]
    a = [s for s in streams if s.get("codec_type") == "audio"]
    if not v and not a:
        raise MediaError("Invalid data found when processing input",
                         "%s: no audio or video stream" % path)

    def secs(s):
        for x in (s.get("duration"), fmt.get("duration")):
            try:
                return float(x)
            except (TypeError, ValueError):
                pass
        return 0.0
    m = Media("video" if v else "audio", audio=bool(a), real=True,
              wav=fmt.get("format_name") == "wav")
    if a:
        m.rate = int(a[0].get("sample_rate") or 0) or None
        m.channels = a[0].get("channels")
        m.seconds = secs(a[0])
        m.codec = a[0].get("codec_name")
    if v:
        s = v[0]
        m.fps = _rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate"))
        m.width, m.height = s.get("width"), s.get("height")
        m.codec = s.get("codec_name")
        m.seconds = secs(s)
        try:
            m.nframes = int(s["nb_frames"])
        except (KeyError, TypeError, ValueError):
            m.nframes = None
        if m.fps is None:
            m.fps = 25
        if m.nframes is not None:
            m.seconds = m.nframes / float(m.fps)
    return m


def read_media(path):
    """Parse a FAKEMEDIA placeholder, or a real file: a PCM WAV here,
    anything else with the real ffprobe (probe_real).

    Raises FileNotFoundError if absent and MediaError if not media."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        try:
            w = wave.open(path, "rb")
            with w:
                rate = w.getframerate()
                n = w.getnframes()
                ch = w.getnchannels()
            return Media("audio", seconds=n / float(rate), rate=rate,
                         channels=ch, audio=True, wav=True,
                         codec="pcm_s16le", real=True)
        except (wave.Error, EOFError, ZeroDivisionError):
            pass  # not PCM (float, extensible, ...): the real ffprobe
    if not is_placeholder(path):
        return probe_real(path)
    with open(path, "rb") as f:
        data = f.read(65536)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MediaError("Invalid data found when processing input")
    lines = text.split("\n")
    first = lines[0].split()
    if len(first) < 3 or " ".join(first[:2]) != MAGIC or first[2] not in ("video", "audio"):
        raise MediaError("Invalid data found when processing input")
    kv = {}
    for tok in first[3:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            kv[k] = v
    meta = [ln for ln in lines[1:] if ln]
    try:
        if first[2] == "video":
            return Media("video", fps=_num(kv.get("fps", "25")),
                         width=int(kv.get("width", "512")),
                         height=int(kv.get("height", "512")),
                         seconds=float(kv.get("seconds", "0")),
                         audio=kv.get("audio", "1") == "1",
                         rate=int(kv.get("arate", "44100")),
                         channels=int(kv.get("achannels", "1")),
                         meta=meta, codec=kv.get("codec", "h264"))
        return Media("audio", seconds=float(kv.get("seconds", "0")),
                     rate=int(kv.get("rate", "16000")),
                     channels=int(kv.get("channels", "1")), audio=True,
                     meta=meta, codec=kv.get("codec", "aac"))
    except ValueError:
        raise MediaError("Invalid data found when processing input")


def video_header(fps, width, height, seconds, audio, arate=44100, codec="h264"):
    fps_s = ("%d" % fps) if float(fps) == int(fps) else ("%g" % fps)
    return "%s video fps=%s width=%d height=%d seconds=%.3f audio=%d arate=%d codec=%s\n" % (
        MAGIC, fps_s, width, height, seconds, 1 if audio else 0, arate, codec)


def write_video(path, fps=25, width=512, height=512, seconds=1.2, audio=True,
                meta=(), arate=44100):
    with open(path, "w") as f:
        f.write(video_header(fps, width, height, seconds, audio, arate))
        for m in meta:
            f.write(m + "\n")


def write_fake_audio(path, seconds, rate=16000, channels=1, meta=()):
    with open(path, "w") as f:
        f.write("%s audio rate=%d channels=%d seconds=%.3f\n" % (MAGIC, rate, channels, seconds))
        for m in meta:
            f.write(m + "\n")


def write_wav(path, seconds, rate=16000, channels=1, freq=0.0):
    """A real 16-bit PCM WAV: silence, or a quiet sine when freq > 0."""
    n = int(round(seconds * rate))
    w = wave.open(path, "wb")
    with w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        if freq <= 0:
            w.writeframes(b"\x00\x00" * channels * n)
        else:
            import array
            period = int(rate / freq) or 1
            one = array.array("h", (int(1000 * math.sin(2 * math.pi * i / period))
                                    for i in range(period)))
            if channels > 1:
                one = array.array("h", (s for s in one for _ in range(channels)))
            if sys.byteorder != "little":
                one.byteswap()
            blob = one.tobytes()
            reps, rest = divmod(n, period)
            w.writeframes(blob * reps + blob[:rest * 2 * channels])

# -------------------------------------------------- other fake formats ----


def write_npy(path, shape, dtype="float32", **meta):
    extra = "".join(" %s=%s" % (k, v) for k, v in sorted(meta.items()))
    with open(path, "w") as f:
        f.write("FAKENPY shape=%s dtype=%s%s\n" % (
            "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")",
            dtype, extra))


def read_npy_shape(path):
    """Shape of a FAKENPY file; raises FileNotFoundError or ValueError."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"\x93NUMPY"):
        # a real .npy: parse its header dict
        hl = struct.unpack("<H", head[8:10])[0] if head[6] == 1 else struct.unpack("<I", head[8:12])[0]
        off = 10 if head[6] == 1 else 12
        hdr = head[off:off + hl].decode("latin1")
        import ast
        d = ast.literal_eval(hdr)
        return tuple(d["shape"])
    try:
        line = head.split(b"\n", 1)[0].decode()
    except UnicodeDecodeError:
        line = ""
    if not line.startswith("FAKENPY shape=("):
        raise ValueError("Cannot load file containing pickled data when allow_pickle=False")
    s = line[len("FAKENPY shape=("):line.index(")")]
    return tuple(int(x) for x in s.split(",") if x.strip())


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def write_img(path, fmt, width, height, **meta):
    extra = "".join(" %s=%s" % (k, v) for k, v in sorted(meta.items()))
    with open(path, "w") as f:
        f.write("FAKEIMG %s %dx%d%s\n" % (fmt, width, height, extra))


def read_img_size(path):
    """(width, height) of a FAKEIMG file, or None (like cv2.imread)."""
    try:
        with open(path) as f:
            first = f.readline().split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(first) < 3 or first[0] != "FAKEIMG":
        return None
    w, h = first[2].split("x")
    return int(w), int(h)


def write_ckpt(path, **meta):
    with open(path, "w") as f:
        f.write("FAKECKPT" + "".join(" %s=%s" % (k, meta[k]) for k in sorted(meta)) + "\n")


def audio_feature_frames(seconds, extractor):
    """Rows of the feature array each extractor makes from `seconds` of audio."""
    if extractor == "deepspeech":
        return max(0, int(seconds * 25))
    if extractor == "esperanto":
        return max(0, int(seconds * 25) + 1)
    if extractor == "hubert":
        t = max(0, (int(round(seconds * 16000)) - 80) // 320)
        return t // 2
    if extractor == "ave":
        return max(0, int(seconds * 25)) + 4
    raise KeyError(extractor)

# ----------------------------------------------------------------- tqdm ----


def format_interval(t):
    mins, s = divmod(int(t), 60)
    h, m = divmod(mins, 60)
    if h:
        return "{0:d}:{1:02d}:{2:02d}".format(h, m, s)
    return "{0:02d}:{1:02d}".format(m, s)


class Bar:
    """Draws what tqdm(ascii=True) draws on a non-terminal stderr.

    Time is virtual: the bar claims `rate` iterations a second so that the
    elapsed/remaining fields look like a real run's."""

    CHARSET = " 123456789#"

    def __init__(self, total=None, desc=None, rate=20.0, file=None, unit="it"):
        self.total = total
        self.desc = desc
        self.rate = float(rate)
        self.file = file or sys.stderr
        self.unit = unit
        self.n = 0
        self.postfix = ""
        self.last_len = 0
        self.closed = False
        self.display(first=True)

    def _bar(self, frac):
        nsyms = len(self.CHARSET) - 1
        bar_length, frac_bar_length = divmod(int(frac * 10 * nsyms), nsyms)
        res = self.CHARSET[-1] * bar_length
        if bar_length < 10:
            res = res + self.CHARSET[frac_bar_length] + " " * (10 - bar_length - 1)
        return res

    def format(self, first=False):
        elapsed = self.n / self.rate if self.rate else 0.0
        rate = None if first or self.n == 0 else self.rate
        if rate is None:
            rate_fmt = "?" + self.unit + "/s"
        elif rate >= 1:
            rate_fmt = "{0:5.2f}".format(rate) + self.unit + "/s"
        else:
            rate_fmt = "{0:5.2f}".format(1.0 / rate) + "s/" + self.unit
        postfix = (", " + self.postfix) if self.postfix else ""
        prefix = (self.desc + ": ") if self.desc else ""
        if self.total:
            frac = min(1.0, self.n / float(self.total))
            remaining = "?" if rate is None else format_interval((self.total - self.n) / rate)
            return "%s%3.0f%%|%s| %d/%d [%s<%s, %s%s]" % (
                prefix, frac * 100, self._bar(frac), self.n, self.total,
                format_interval(elapsed), remaining, rate_fmt, postfix)
        return "%s%d%s [%s, %s%s]" % (prefix, self.n, self.unit,
                                       format_interval(elapsed), rate_fmt, postfix)

    def display(self, first=False):
        s = self.format(first)
        pad = " " * max(self.last_len - len(s), 0)
        self.last_len = len(s)
        self.file.write("\r" + s + pad)
        self.file.flush()

    def set_postfix(self, **kw):
        self.postfix = ", ".join("%s=%s" % (k, v) for k, v in kw.items())

    def update_to(self, n, postfix=None):
        self.n = n
        if postfix is not None:
            self.postfix = postfix
        self.display()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.display()
        self.file.write("\n")
        self.file.flush()


def stride_for(total, updates=100, multiple=1):
    """An update stride (a multiple of `multiple`) giving at most `updates` updates."""
    if total <= 0:
        return multiple
    s = int(math.ceil(total / float(updates)))
    s = int(math.ceil(s / float(multiple))) * multiple
    return max(multiple, s)


def iterate(items, ctl, desc=None, rate=50.0, total_known=True, on_fail=None, work=True):
    """Yield items while drawing a tqdm bar (<= 100 redraws) and honouring
    the control's slow / fail_at.  on_fail() is raised at fail_at.  With
    work=False (data loading before the real work) there is no fail_at and
    no default tick, only slow MS."""
    items = list(items)
    total = len(items)
    bar = Bar(total=total if total_known else None, desc=desc, rate=rate)
    step = stride_for(total)
    for i, it in enumerate(items):
        yield it
        done = i + 1
        if done % step == 0 or done == total:
            bar.update_to(done)
            if work:
                ctl.progress(done / float(total), on_fail or _default_fail)
            elif ctl.mode == "slow":
                time.sleep(ctl.tick_seconds())
    bar.close()


def _default_fail():
    raise RuntimeError("CUDA error: an illegal memory access was encountered")
