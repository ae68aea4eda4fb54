"""``colcon build`` of this checkout, as a ROS 2 user builds the package, and package.xml.

The checkout is linked as ``src/disrt_ros`` into a workspace under pytest's tmp_path and built
twice with the venv's colcon (plain and ``--symlink-install``), with nothing written into the
checkout. Each install tree is checked for what ``ros2 run`` and ``ros2 launch`` rely on: the
executables in ``lib/disrt_ros/`` (every console script of setup.py, including every one the
launch file and the README name), the launch and config files, package.xml and the ament
index marker under ``share/``; then ``install/setup.bash`` is sourced in a fresh shell (no
inherited environment except the venv on PATH) and the Python path, the ament index and the
node's ``--help`` are checked from there. Each build takes about a second; the two ``--help``
runs (torch and rclpy imports) take a few seconds each.

package.xml is checked against the code: every ROS package the code imports or the launch
file starts, and every Python library with a rosdep key that it imports, is an exec_depend,
and nothing else is; the README's pip line for a ROS install holds the rest of setup.py's
install_requires, pinned as in constraints.txt.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import json
import os
import random
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "disrt_ros"
#: Python libraries with a Jazzy rosdep key (ros/rosdistro rosdep/python.yaml), as
#: import name -> (pip name in setup.py, rosdep key).
KEYED = {
    "numpy": ("numpy", "python3-numpy"),
    "scipy": ("scipy", "python3-scipy"),
    "cv2": ("opencv-python-headless", "python3-opencv"),
    "yaml": ("PyYAML", "python3-yaml"),
    "tqdm": ("tqdm", "python3-tqdm"),
}
#: setuptools is in install_requires by ament_python convention; ROS has it (colcon needs it).
BUILD_TOOLS = {"setuptools"}
_HAS_COLCON = importlib.util.find_spec("colcon_core") is not None
needs_colcon = pytest.mark.skipif(
    not _HAS_COLCON, reason="colcon is not installed (it comes with the dev extra: "
                            "pip install -c constraints.txt -e '.[dev]')")


# --------------------------------------------------------------------- sources of truth

def _setup_keyword(name: str):
    """A literal keyword argument of the ``setup(...)`` call in setup.py, read without running
    it (other tools may be added to it at any time, so nothing here is hard-coded)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == name:
                    return ast.literal_eval(keyword.value)
    raise AssertionError(f"setup.py: setup() has no literal {name}=")


def console_scripts() -> list[str]:
    return [line.split("=")[0].strip()
            for line in _setup_keyword("entry_points")["console_scripts"]]


def _dist_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0)


def launch_nodes() -> list[tuple[str, str]]:
    """(package, executable) of every ``Node(...)`` in the launch files."""
    nodes = []
    for path in sorted((ROOT / "launch").glob("*.launch.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Node":
                kw = {k.arg: k.value for k in node.keywords}
                nodes.append((ast.literal_eval(kw["package"]), ast.literal_eval(kw["executable"])))
    assert nodes, "no Node(...) found in launch/*.launch.py"
    return nodes


def readme_tools() -> set[str]:
    """Every ``disrt-...`` command the README names."""
    text = (ROOT / "README.md").read_text()
    return set(re.findall(r"(?<![\w./-])disrt-[a-z0-9]+(?:-[a-z0-9]+)*", text))


def config_files() -> list[Path]:
    """The checkout's config files (config/README.md documents them and is not one)."""
    return sorted(p for p in (ROOT / "config").iterdir() if p.is_file() and p.suffix != ".md")


def package_xml():
    """package.xml parsed by catkin_pkg, the parser colcon-ros and rosdep use."""
    pytest.importorskip("catkin_pkg", reason="catkin_pkg comes with colcon (dev extra)")
    from catkin_pkg.package import parse_package

    return parse_package(str(ROOT / "package.xml"))


def imported_modules(*folders: str) -> set[str]:
    """Top-level names of every absolute import (also the lazy ones inside functions)."""
    names = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _is_ros_package(module: str) -> bool:
    """A ROS package (its rosdep key is its name): installed here from a ``ros-*`` wheel, or
    named like one (launch and launch_ros have no wheels in the venv)."""
    dists = _distributions().get(module, [])
    return (any(d.startswith("ros-") for d in dists) or module in {"launch", "launch_ros"}
            or module.endswith(("_msgs", "_interfaces")))


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


# --------------------------------------------------------------------- package.xml

def test_package_xml_declares_what_the_code_uses():
    """exec_depends = ROS packages imported by disrt_ros or started by the launch file, plus
    the rosdep keys of the keyed Python libraries imported anywhere; a stale entry (like the
    cv_bridge the code never used) fails as much as a missing one."""
    pkg = package_xml()
    assert pkg.name == PACKAGE and pkg.get_build_type() == "ament_python"
    declared = {dep.name for dep in pkg.exec_depends}
    assert len(declared) == len(pkg.exec_depends), "an exec_depend is listed twice"

    ros_imports = {m for m in imported_modules("disrt_ros", "launch") if _is_ros_package(m)}
    launched = {package for package, _ in launch_nodes() if package != PACKAGE}
    libraries = {KEYED[m][1] for m in imported_modules("disrt_ros", "disrt_core") if m in KEYED}
    assert "rclpy" in ros_imports and "launch_ros" in ros_imports  # the scan sees the imports
    needed = ros_imports | launched | libraries

    assert needed - declared == set(), "used but not an exec_depend in package.xml"
    assert declared - needed == set(), "exec_depend in package.xml that nothing uses"
    assert {dep.name for dep in pkg.test_depends} == {"python3-pytest"}


def test_readme_pip_line_installs_the_rest_pinned():
    """The README's commands for a ROS 2 install: rosdep brings the keyed libraries, pip the
    rest of install_requires, at constraints.txt's versions, and none of the keyed ones (a pip
    numpy 2 would shadow Ubuntu's numpy 1.x that ROS's message libraries are built against)."""
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", text, re.S) if "rosdep install" in b]
    assert len(blocks) == 1, "README: expected one bash block with the rosdep install commands"
    block = blocks[0].replace("\\\n", " ")
    pip_args = [arg for line in block.splitlines() if re.match(r"\s*pip install ", line)
                for arg in line.split("#")[0].split()[2:]]
    assert pip_args and all("==" in arg for arg in pip_args), \
        f"README pip line: every package pinned: {pip_args}"
    pins = dict(arg.split("==") for arg in pip_args)
    for command in ("rosdep install --from-paths src", "colcon build",
                    "source install/setup.bash", "ros2 launch disrt_ros bed_monitor.launch.py"):
        assert command in block, f"README ROS 2 commands lack {command!r}"

    pinned = constraints()
    for name, version in pins.items():
        assert pinned.get(name.lower()) == version, \
            f"README pins {name}=={version}, constraints.txt {pinned.get(name.lower())}"
    keyed_pip = {pip for pip, _ in KEYED.values()}
    required = {_dist_name(r) for r in _setup_keyword("install_requires")}
    assert required - keyed_pip - BUILD_TOOLS - set(pins) == set(), \
        "install_requires without a rosdep key and missing from the README's pip line"
    assert set(pins) & keyed_pip == set(), "the README pip-installs a library rosdep installs"


# --------------------------------------------------------------------- colcon build

@dataclass
class Workspace:
    root: Path
    symlink: bool
    checkout_before: dict
    checkout_after: dict

    @property
    def prefix(self) -> Path:
        return self.root / "install" / PACKAGE

    @property
    def share(self) -> Path:
        return self.prefix / "share" / PACKAGE


def _colcon_outputs_in_checkout() -> dict[str, int]:
    """What a colcon build run in the checkout would leave there, with modification times."""
    found = {}
    for entry in ROOT.iterdir():
        if entry.name in ("build", "install", "log") or entry.name.endswith(".egg-info"):
            found[entry.name] = max([entry.stat().st_mtime_ns]
                                    + [f.stat().st_mtime_ns for f in entry.rglob("*")])
    return found


@pytest.fixture(scope="module", params=[False, True], ids=["copy", "symlink-install"])
def workspace(request, tmp_path_factory) -> Workspace:
    """A workspace with the checkout as src/disrt_ros, built by the venv's colcon."""
    root = tmp_path_factory.mktemp("symlink_ws" if request.param else "ws")
    (root / "src").mkdir()
    (root / "src" / PACKAGE).symlink_to(ROOT, target_is_directory=True)
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}",
           "HOME": str(root), "COLCON_HOME": str(root / ".colcon"), "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "colcon", "build", "--packages-select", PACKAGE,
               "--event-handlers", "console_cohesion+"]
    before = _colcon_outputs_in_checkout()
    done = subprocess.run(command + (["--symlink-install"] if request.param else []),
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return Workspace(root, request.param, before, _colcon_outputs_in_checkout())


def _fresh_shell(ws: Workspace, script: str) -> subprocess.CompletedProcess:
    """``script`` after ``source install/setup.bash`` in a bash with no inherited environment
    but the venv on PATH (as a user's login shell has their Python) and ROS's local-only
    discovery in a domain of its own."""
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
           "HOME": str(ws.root), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_DOMAIN_ID": str(random.SystemRandom().randint(1, 101))}
    return subprocess.run(["bash", "--noprofile", "--norc", "-c",
                           f"set -e; source install/setup.bash; {script}"],
                          cwd=ws.root, env=env, capture_output=True, text=True, timeout=300)


@needs_colcon
def test_build_leaves_the_checkout_alone(workspace):
    assert workspace.checkout_after == workspace.checkout_before, \
        "colcon wrote build/, install/, log/ or egg-info into the checkout"
    assert (workspace.root / "build" / PACKAGE).is_dir() and workspace.prefix.is_dir()
    assert list((workspace.root / "log").glob("build_*"))


@needs_colcon
def test_executables_where_ros2_run_looks(workspace):
    """lib/disrt_ros/<name> for every console script, each runnable with the venv's Python;
    every tool the launch file and the README name among them."""
    scripts = console_scripts()
    lib = workspace.prefix / "lib" / PACKAGE
    installed = sorted(p.name for p in lib.iterdir())
    assert installed == sorted(scripts)
    for name in scripts:
        path = lib / name
        assert os.access(path, os.X_OK), f"{path} is not executable"
        assert path.read_text().splitlines()[0] == f"#!{sys.executable}", path
    ours = {executable for package, executable in launch_nodes() if package == PACKAGE}
    assert "disrt-bed-monitor" in ours
    assert ours - set(installed) == set(), "the launch file starts a missing executable"
    assert readme_tools() - set(installed) == set(), "the README names a missing tool"


@needs_colcon
def test_share_has_launch_config_manifest_and_index_marker(workspace):
    share = workspace.share
    expected = {share / "package.xml": ROOT / "package.xml"}
    expected |= {share / "launch" / p.name: p for p in (ROOT / "launch").glob("*.launch.py")}
    expected |= {share / "config" / p.name: p for p in config_files()}
    assert len(expected) >= 4  # package.xml, the launch file, bed_monitor.yaml and .rviz
    for installed, source in expected.items():
        assert installed.is_file(), f"{installed.relative_to(workspace.root)} missing"
        assert installed.read_bytes() == source.read_bytes(), installed
        # --symlink-install: edits to the checkout show without a rebuild
        assert installed.is_symlink() == workspace.symlink, installed
        if workspace.symlink:
            assert installed.resolve() == source.resolve(), installed
    marker = workspace.prefix / "share/ament_index/resource_index/packages" / PACKAGE
    assert marker.is_file(), "ament index marker missing: ros2 run/launch will not find us"

    # The launch file finds its YAML and RViz config next to itself (share/ or the checkout).
    for launch in share.glob("launch/*.launch.py"):
        for name in re.findall(r'CONFIG / "([^"]+)"', launch.read_text()):
            assert (launch.resolve().parent.parent / "config" / name).is_file(), name

    # The default weights the node loads when no checkpoint is given
    weights = sorted((ROOT / "disrt_core" / "weights").glob("*.safetensors"))
    assert weights
    site = next(workspace.prefix.glob("lib/python3*/site-packages"))
    base = workspace.root / "build" / PACKAGE if workspace.symlink else site
    for source in weights:
        copy = base / "disrt_core" / "weights" / source.name
        assert copy.stat().st_size == source.stat().st_size, copy


PROBE = """
import importlib.util, json, sys
import disrt_core, disrt_ros
from ament_index_python.packages import get_package_prefix, get_package_share_directory
node = importlib.util.find_spec("disrt_ros.node").origin  # found, not run (torch: seconds)
print(json.dumps({"disrt_ros": disrt_ros.__file__, "disrt_core": disrt_core.__file__,
                  "node": node, "prefix": get_package_prefix("disrt_ros"),
                  "share": get_package_share_directory("disrt_ros"),
                  "executable": sys.executable}))
"""


@needs_colcon
def test_sourced_setup_puts_the_install_on_the_python_path(workspace):
    """After ``source install/setup.bash`` Python imports disrt_ros and disrt_core from the
    workspace (the copy in install/, or the build/ links to the checkout with
    --symlink-install), not from the venv's own editable install, and the ament index, which
    ``ros2 run`` and ``ros2 launch`` search, resolves the package to install/disrt_ros."""
    pytest.importorskip("ament_index_python")
    done = _fresh_shell(workspace, f"python -c {shlex.quote(PROBE)}")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found["prefix"]) == workspace.prefix
    assert Path(found["share"]) == workspace.share
    assert found["executable"] == sys.executable
    for module, source in (("disrt_ros", ROOT / "disrt_ros/__init__.py"),
                           ("disrt_core", ROOT / "disrt_core/__init__.py"),
                           ("node", ROOT / "disrt_ros/node.py")):
        path = Path(found[module])
        if workspace.symlink:
            assert path.is_relative_to(workspace.root / "build" / PACKAGE), path
            assert path.resolve() == source.resolve(), path
        else:
            assert path.is_relative_to(workspace.prefix / "lib"), path
            assert "site-packages" in path.parts and not path.is_symlink(), path
            assert path.read_bytes() == source.read_bytes(), path


@needs_colcon
@pytest.mark.ros
def test_node_help_runs_from_the_install_tree(workspace):
    """``install/disrt_ros/lib/disrt_ros/disrt-bed-monitor --help``, as ros2 run starts it."""
    pytest.importorskip("rclpy")
    done = _fresh_shell(workspace, f"install/{PACKAGE}/lib/{PACKAGE}/disrt-bed-monitor --help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: disrt-bed-monitor"), done.stdout
    assert "--ros-args" in done.stdout
