"""The service images' root filesystem, taken from a Python base image (run by its python3 in
the Dockerfile's builder stage), and the check of an image's contents against images/contents.txt.

    python3 rootfs.py assemble STAGE VENV   the interpreter, the shared libraries it, the stdlib's
                                            extension modules and the venv's link to (ldd), the
                                            stdlib as byte-code in one zip, tar; into STAGE
    python3 rootfs.py check LIST STAGE [DIR...]
                                            every path of the image (STAGE as its root, each DIR
                                            at its own absolute path) is on LIST and every line
                                            of LIST matches a path; exit 1 otherwise, naming
                                            each difference

Nothing here runs in the image: it needs only the base's python3 and ldd. The venv is compiled
in place, sourceless (legacy .pyc next to where the .py was), and every file it writes gets one
fixed mtime, so the same inputs make the same layers.
"""

from __future__ import annotations

import compileall
import fnmatch
import os
import py_compile
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

# Not needed to run the services: tests, GUI and terminal toolkits, the packaging and
# build tools, databases the services do not use. (Matched against top-level stdlib names.)
STDLIB_DROP = {
    "test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "lib2to3",
    "pydoc_data", "distutils", "venv", "sqlite3", "curses", "dbm", "unittest",
    "site-packages", "dist-packages", "__phello__", "__pycache__",
}  # fmt: skip
# Extension modules of the same kinds (and the self-tests CPython ships).
DYNLOAD_DROP = re.compile(
    r"^(_test|_ctypes_test|_xx|xx|_curses|readline|_dbm|_gdbm|_sqlite3|_tkinter|nis|ossaudiodev"
    r"|_crypt|spwd)"
)
# The one command the image keeps besides python: skaffold's file sync runs `tar xmf - -C /`.
TOOLS = ("tar",)
FIXED_MTIME = 315532800  # 1980-01-01, the earliest time a zip entry can hold
USER_ENTRY = "hashstack:x:10001:10001:hashstack:/nonexistent:/usr/sbin/nologin\n"
GROUP_ENTRY = "hashstack:x:10001:\n"


def libraries(binary: Path) -> set[Path]:
    """The shared libraries `binary` loads, as ldd resolves them (the loader itself included)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    found = set()
    for line in out.splitlines():
        match = re.search(r"(/\S+)", line)
        if match and "vdso" not in line:
            found.add(Path(match.group(1)))
    return found


def copy_path(path: Path, stage: Path) -> None:
    """Copies `path` into `stage` at the same place: links as links (and their targets), files
    resolved through any linked directory (/lib -> usr/lib on merged-usr) to where they live,
    and those directory links too (the kernel loads /lib64/ld-linux-x86-64.so.2 by that name)."""
    for ancestor in reversed(path.parents):
        staged = stage / ancestor.relative_to("/")
        if ancestor.is_symlink() and not staged.is_symlink():
            staged.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(ancestor), staged)
    real_parent = Path(os.path.realpath(path.parent))
    path = real_parent / path.name
    dest = stage / path.relative_to("/")
    if dest.exists() or dest.is_symlink():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        target = os.readlink(path)
        os.symlink(target, dest)
        copy_path(real_parent / target if not os.path.isabs(target) else Path(target), stage)
    else:
        shutil.copy2(path, dest)


def stdlib_zip(stdlib: Path, zip_path: Path) -> None:
    """The pure-Python stdlib, minus STDLIB_DROP, as unchecked-hash byte-code in one zip (the
    interpreter's own sys.path entry lib/python3XY.zip): no source to stat or read at import."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for source in sorted(stdlib.rglob("*.py")):
            rel = source.relative_to(stdlib)
            if rel.parts[0] in STDLIB_DROP or "__pycache__" in rel.parts:
                continue
            if rel.parts[0] in {"lib-dynload"} or rel.parts[0].startswith("config-"):
                continue
            compiled = zip_path.parent / ".tmp.pyc"
            py_compile.compile(
                str(source), cfile=str(compiled), dfile=str(rel), doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )  # fmt: skip
            info = zipfile.ZipInfo(str(rel.with_suffix(".pyc")), (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, compiled.read_bytes())
            compiled.unlink()


def sourceless(tree: Path) -> None:
    """Byte-compiles every .py under `tree` in place (unchecked hash) and removes the sources."""
    ok = compileall.compile_dir(
        str(tree), quiet=1, legacy=True, ddir=str(tree),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )  # fmt: skip
    if not ok:
        raise SystemExit(f"byte-compiling {tree} failed")
    for path in list(tree.rglob("*")):
        if path.name == "__pycache__" and path.is_dir():
            shutil.rmtree(path)
        elif path.suffix == ".py" and path.is_file():
            path.unlink()


def package_records(stage: Path) -> None:
    """/var/lib/dpkg/status.d/<package>: the dpkg status record of each Debian package a staged
    file comes from (Debian's python3.11, libc, openssl...), so an SBOM scanner still finds them
    without dpkg or its database in the image (the layout distroless images use)."""
    packages: set[str] = set()
    for path in stage.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        name = "/" + str(path.relative_to(stage))
        # dpkg knows bookworm's libraries by their /lib names (merged-usr moved them to /usr).
        for candidate in dict.fromkeys([name, name.removeprefix("/usr")]):
            found = subprocess.run(
                ["dpkg-query", "--search", candidate], capture_output=True, text=True, check=False
            )
            if found.returncode == 0:
                packages.update(line.split(":", 1)[0] for line in found.stdout.splitlines())
                break
    out = stage / "var" / "lib" / "dpkg" / "status.d"
    for package in sorted(packages):
        record = subprocess.run(
            ["dpkg-query", "--status", package], capture_output=True, text=True, check=True
        ).stdout
        out.mkdir(parents=True, exist_ok=True)
        (out / package.replace(":", "_")).write_text(record)


def fix_mtimes(tree: Path) -> None:
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)


def assemble(stage: Path, venv: Path) -> None:
    executable = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dynload = Path(sysconfig.get_paths()["platstdlib"]) / "lib-dynload"
    # The venv's links name the interpreter the way `python3 -m venv` was called.
    for link in (venv / "bin").glob("python*"):
        if os.path.isabs(target := os.readlink(link)):
            copy_path(Path(target), stage)
    copy_path(executable, stage)
    binaries = [executable]
    # libpython, where the interpreter is built shared (the official images).
    binaries += [lib for lib in libraries(executable) if "libpython" in lib.name]
    out_dynload = stage / dynload.relative_to("/")
    out_dynload.mkdir(parents=True, exist_ok=True)
    for module in sorted(dynload.glob("*.so")):
        if not DYNLOAD_DROP.match(module.name):
            shutil.copy2(module, out_dynload / module.name)
            binaries.append(module)
    binaries += sorted(venv.rglob("*.so"))
    for tool in TOOLS:
        found = shutil.which(tool)
        if not found:
            raise SystemExit(f"{tool} is not in the base image")
        copy_path(Path(found), stage)
        binaries.append(Path(found))
    for binary in binaries:
        for lib in libraries(binary):
            copy_path(lib, stage)
    tag = "".join(map(str, sys.version_info[:2]))
    stdlib_zip(stdlib, stage / stdlib.parent.relative_to("/") / f"python{tag}.zip")
    # The stdlib directory itself stays (lib-dynload and the landmark the interpreter looks
    # for to find its prefix: os.pyc; the zip comes first on sys.path, so this one is unused).
    py_compile.compile(
        str(stdlib / "os.py"), cfile=str(stage / stdlib.relative_to("/") / "os.pyc"),
        dfile="os.py", doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )  # fmt: skip
    etc = stage / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    # A name for UID/GID 10001: some libraries look the user up.
    (etc / "passwd").write_text("root:x:0:0:root:/root:/usr/sbin/nologin\n" + USER_ENTRY)
    (etc / "group").write_text("root:x:0:\n" + GROUP_ENTRY)
    (stage / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (stage / "tmp").chmod(0o1777)
    if shutil.which("dpkg-query"):
        package_records(stage)
    fix_mtimes(stage)
    # The venv: no activation scripts (they are for shells), no headers, no pip; byte-code only.
    shutil.rmtree(venv / "include", ignore_errors=True)
    if (venv / "lib64").is_symlink():
        (venv / "lib64").unlink()
    for path in (venv / "bin").iterdir():
        if path.name not in {"gunicorn", "python", "python3", f"python{sys.version_info[0]}."
                             f"{sys.version_info[1]}"}:  # fmt: skip
            path.unlink()
    sourceless(venv / "lib")
    fix_mtimes(venv)


def entries(root: Path) -> set[str]:
    """Absolute paths of the files, links and empty directories under `root`."""
    found = set()
    for path in root.rglob("*"):
        if path.is_symlink() or path.is_file() or (path.is_dir() and not any(path.iterdir())):
            found.add("/" + str(path.relative_to(root)))
    return found


def read_list(text: str) -> list[str]:
    """The lines of a contents list: one glob each, `#` starts the reason, `?` marks a glob that
    may match nothing (a path only some bases or platforms have)."""
    return [p for line in text.splitlines() if (p := line.split("#", 1)[0].strip())]


def differences(lines: list[str], paths: set[str]) -> list[str]:
    """What is wrong between a contents list and an image's paths; empty when they agree.
    A glob is matched against the whole path (fnmatch: `*` crosses `/`)."""
    patterns = [line.removeprefix("?") for line in lines]
    problems = [f"not on the list: {p}" for p in sorted(paths)
                if not any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]  # fmt: skip
    problems += [f"on the list but not in the image: {line}" for line in lines
                 if not line.startswith("?")
                 and not any(fnmatch.fnmatchcase(p, line) for p in paths)]  # fmt: skip
    return problems


def check(listing: Path, stage: Path, dirs: list[Path]) -> None:
    paths = entries(stage)
    for tree in dirs:
        paths |= {str(tree) + p for p in entries(tree)}
    problems = differences(read_list(listing.read_text()), paths)
    if problems:
        print(f"the image does not match {listing.name}:", *problems, sep="\n  ", file=sys.stderr)
        raise SystemExit(1)
    print(f"{len(paths)} paths, all on {listing.name}")


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "assemble":
        assemble(Path(argv[1]), Path(argv[2]))
    elif len(argv) >= 3 and argv[0] == "check":
        check(Path(argv[1]), Path(argv[2]), [Path(a) for a in argv[3:]])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
