"""Network and native code: what the reviewed Python reaches outside itself.

`code.network`: an import of a download/HTTP library, a call that fetches (`hf_hub_download`,
`torch.hub.load`, `urlopen`) or a shell command that downloads (`curl`, `git clone`, `pip
install`); submissions must be self-contained. `code.native`: code compiled or loaded at run
time (`load_inline`, `ctypes.CDLL`, a compiler run through the shell), which the static review
cannot read, so a human reviewer must (shipped C/C++/CUDA files are found by `review.scan_bundle`).
Only reachable code counts.

`NetworkNative` is a mixin of `review._Analysis`: it uses the analysis' reach (`self.program`,
`self.live`, `self.r`, `self._roots`) and `self.add`.
"""

from __future__ import annotations

import ast
import re

from gepa.compliance.reach import dotted, own_nodes, walk
from gepa.compliance.review_names import name_of

_local = own_nodes  # nodes of a subtree without nested function/class bodies (cached per node)

_NET_MODULES = ("requests", "urllib.request", "urllib3", "httpx", "aiohttp", "http.client", "huggingface_hub",
                "wget", "gdown", "ftplib", "paramiko", "boto3", "smart_open")
_NET_CALLS = {"torch.hub.load", "torch.hub.load_state_dict_from_url", "torch.hub.download_url_to_file",
              "hf_hub_download", "snapshot_download", "load_dataset", "datasets.load_dataset", "urlopen",
              "urllib.request.urlopen", "urlretrieve", "socket.create_connection", "socket.socket"}
_NET_CMD = re.compile(r"\b(curl|wget|git\s+clone|huggingface-cli|hf\s+download|pip\s+install|scp|rsync|aws\s+s3)\b")
_NATIVE_CALLS = {"load_inline", "CDLL", "PyDLL", "WinDLL", "LoadLibrary", "RawKernel", "RawModule", "SourceModule",
                 "dlopen", "compile_extension", "load_cuda_kernel"}
_COMPILER_CMD = re.compile(r"(^|[\s/'\"])(gcc|g\+\+|nvcc|clang|clang\+\+|cc|c\+\+|icc|cmake|make|ninja)(\s|$|['\"])")
_SHELL = {"subprocess.run", "subprocess.call", "subprocess.Popen", "subprocess.check_output", "subprocess.check_call",
          "os.system", "os.popen"}


class NetworkNative:
    """Reachable network access and run-time native code (mixin of `_Analysis`)."""

    def _network(self):
        for file, tree in self.program.modules:
            for n in walk(tree):
                if not (id(n) in self.live or id(n) in self.r.module_live):
                    continue
                mods = []
                if isinstance(n, ast.Import):
                    mods = [a.name for a in n.names]
                elif isinstance(n, ast.ImportFrom) and n.module:
                    mods = [n.module] + [f"{n.module}.{a.name}" for a in n.names]
                for m in mods:
                    if any(m == x or m.startswith(x + ".") for x in _NET_MODULES):
                        self.add("code.network", file, n.lineno, f"imports `{m}`.")
                        break
                if isinstance(n, ast.Call):
                    d = dotted(n.func) or ""
                    short = d.split(".")[-1]
                    if d in _NET_CALLS or short in ("hf_hub_download", "snapshot_download", "urlretrieve", "urlopen", "download_url_to_file", "load_state_dict_from_url"):
                        self.add("code.network", file, n.lineno, f"calls `{d}`.")
                    elif d in _SHELL:
                        text = " ".join(s.value for s in ast.walk(n) if isinstance(s, ast.Constant) and isinstance(s.value, str))
                        if _NET_CMD.search(text):
                            self.add("code.network", file, n.lineno, f"runs a shell command that downloads (`{_NET_CMD.search(text).group(0)}`).")

    def _native(self):
        for f, file, root, live in self._roots():
            for n in _local(root):
                if id(n) not in live or not isinstance(n, ast.Call):
                    continue
                d = dotted(n.func) or ""
                short = d.split(".")[-1] if d else (name_of(n.func) or "")
                hit = None
                if short in _NATIVE_CALLS or (short == "load" and "cpp_extension" in d):
                    hit = f"`{d or short}` compiles or loads native code at run time"
                elif d in _SHELL:
                    text = " ".join(c.value for c in ast.walk(n) if isinstance(c, ast.Constant) and isinstance(c.value, str))
                    m = _COMPILER_CMD.search(text)
                    if m:
                        hit = f"runs a compiler (`{m.group(0)}`)"
                if hit:
                    self.add("code.native", file, n.lineno, f"{hit}.")
