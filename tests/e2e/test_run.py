#!/usr/bin/env python3
"""tests/e2e/run, checked without Docker or a cluster: its options, its --print
transcript, whole runs against a fake cluster (tests/e2e/fake_cluster.py, put
first on PATH as docker, kind, helm and kubectl), the EXIT trap on failures and
interrupts, the port-forward helper with a stand-in port-forward that dies,
provider.py giving up on a dead port, and the pins of kind-config.yaml.

    python3 tests/e2e/test_run.py [-v] [TestCase[.test]]

scripts/check-packaging runs it (and so scripts/test). HOOKLINE_E2E_RUN names
another copy of the script to test (an older one, to see what it missed); it
must sit in tests/e2e/ of this repository, as it finds the repository from
its own path.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

E2E = Path(__file__).resolve().parent
REPO = E2E.parent.parent
SCRIPT = Path(os.environ.get("HOOKLINE_E2E_RUN", E2E / "run")).resolve()
CLUSTER = "hookline-e2e"
# A run against the fakes takes seconds; a hang is a failure, not a wait.
RUN_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: it holds no port.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


class FakeCluster(unittest.TestCase):
    """Each test gets its own fake world, port and temporary directory."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="hookline-e2e-test."))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.bin = self.tmp / "bin"
        self.state = self.tmp / "state"
        self.bin.mkdir()
        self.state.mkdir()
        # Shims rather than links: straight to this interpreter, without the
        # site packages, as each run makes a hundred calls.
        for tool in ("docker", "kind", "helm", "kubectl"):
            self.shim(tool, f'exec "{sys.executable}" -I -S "{E2E / "fake_cluster.py"}" {tool} "$@"')
        self.shim("python3", f'exec "{sys.executable}" "$@"')
        self.port = free_port()
        self.addCleanup(self.end_forwards)

    def shim(self, name: str, command: str):
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{command}\n")
        path.chmod(0o755)

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKLINE_E2E_", "HOOKLINE_FAKE_"))}
        env.update(
            PATH=f"{self.bin}:{env['PATH']}",
            TMPDIR=str(self.tmp),
            HOOKLINE_FAKE_STATE=str(self.state),
            HOOKLINE_E2E_PORT=str(self.port),
        )
        env.update(extra)
        return env

    def run_script(self, *args, **env) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(SCRIPT), *args],
            cwd=REPO,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    def calls(self) -> list:
        log = self.state / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def called(self, pattern: str) -> bool:
        return any(re.search(pattern, call) for call in self.calls())

    def forwards(self) -> list:
        pids = self.state / "forwards.pids"
        return [int(p) for p in pids.read_text().split()] if pids.exists() else []

    def end_forwards(self):
        for pid in self.forwards():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def seed(self, clusters=(), images=()):
        """A world that has these clusters and images already."""
        (self.state / "state.json").write_text(
            json.dumps({"clusters": list(clusters), "images": list(images), "pipeline": None, "topics": {}})
        )

    def seed_images(self, tag: str):
        """Images built before, for --skip-build."""
        self.seed(images=[f"ghcr.io/hookline/hookline-{n}:{tag}" for n in ("operator", "ingest", "worker")])

    def reset_world(self):
        self.end_forwards()
        shutil.rmtree(self.state)
        self.state.mkdir()

    def assert_cleaned_up(self, result):
        self.assertTrue(
            self.called(rf"^kind delete cluster --name {CLUSTER}$"),
            f"the cluster was not deleted\n{result.stderr[-3000:]}",
        )
        self.assertEqual([p for p in self.forwards() if alive(p)], [], "a port-forward outlived the run")
        self.assertEqual(list(self.tmp.glob("hookline-e2e.*")), [], "the work directory outlived the run")


class Arguments(FakeCluster):
    def test_help_prints_the_usage_and_touches_nothing(self):
        result = self.run_script("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        for option in ("--print", "--keep", "--tag TAG", "--skip-build"):
            self.assertIn(option, result.stdout)
        self.assertEqual(self.calls(), [])

    def test_a_usage_error_exits_2_before_anything_is_touched(self):
        for args in (["--bogus"], ["--tag"], ["--tag="], ["--skip-build"], ["--tag", "not a tag"]):
            with self.subTest(args=args):
                result = self.run_script(*args)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("usage:", result.stderr)
        self.assertEqual(self.calls(), [], "a usage error must not reach any tool")

    def test_skip_build_takes_its_tag_from_the_environment_too(self):
        self.seed_images("t7")
        result = self.run_script(HOOKLINE_E2E_SKIP_BUILD="1", HOOKLINE_E2E_TAG="t7")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertFalse(self.called(r"^docker build"), "--skip-build must not build")
        self.assertTrue(self.called(r"image\.ingest\.tag=t7"))


class Print(FakeCluster):
    def test_print_shows_every_step_in_order_and_runs_nothing(self):
        result = self.run_script("--print", "--tag", "t1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.calls(), [], "--print must not run any tool")
        expected = [
            "kind create cluster --name hookline-e2e --config kind-config.yaml",
            "wait --for=condition=Ready nodes --all",
            "scripts/images t1",
            "docker pull --platform",
            "docker image save --platform",
            "kind load image-archive --name hookline-e2e",
            "apply -f tests/e2e/manifests/",
            "rollout status deployment/kafka",
            "apply --server-side --force-conflicts -f charts/hookline/crds/",
            "helm upgrade --install hookline charts/hookline",
            "image.ingest.tag=t1",
            "rollout status deployment/hookline",
            "apply -f examples/kubernetes/",
            "observedGeneration",
            "wait whp/payments --for=condition=Ready",
            "rollout status deployment/payments-ingest",
            "KAFKA_HEAP_OPTS=-Xms32m -Xmx128m",
            f"port-forward service/payments-ingest {self.port}:80",
            "provider.py ready",
            "provider.py send",
            "psql",
            "patch whp payments",
            "rollout status deployment/payments-worker-orders-webhooks",
            "generation (not rolled)",
            "--run r2",
            "delete whp payments",
            "deletionPolicy",
            "kind delete cluster --name hookline-e2e",
        ]
        at = 0
        for text in expected:
            found = result.stdout.find(text, at)
            self.assertGreaterEqual(found, 0, f"{text!r} missing after position {at}:\n{result.stdout}")
            at = found
        self.assertNotIn("FAIL", result.stdout + result.stderr)

    def test_print_needs_none_of_the_tools(self):
        # Only what bash itself and the script's own helpers need.
        path = self.tmp / "bare"
        path.mkdir()
        (path / "python3").symlink_to(sys.executable)
        for tool in ("mktemp", "rm", "date", "sed", "base64", "head", "grep", "dirname"):
            (path / tool).symlink_to(shutil.which(tool))
        result = subprocess.run(
            [shutil.which("bash"), str(SCRIPT), "--print"],
            cwd=REPO,
            env=dict(self.env(), PATH=str(path)),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("kind delete cluster", result.stdout)


class WholeRun(FakeCluster):
    def test_passes_when_the_port_forward_dies_at_the_partition_patch(self):
        # The certain failure of the first version: the patch replaced the
        # ingest pods, the port-forward bound to the old one exited, and the
        # second batch met "connection refused". Here the patch ends every
        # port-forward, whatever the operator does.
        result = self.run_script(HOOKLINE_FAKE_PATCH_KILLS_FORWARD="1")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        self.assertIn("==> passed", result.stderr)
        starts = [c for c in self.calls() if " port-forward " in c]
        self.assertGreaterEqual(len(starts), 2, "the port-forward was not started again")
        received = (self.state / "webhooks.jsonl").read_text()
        self.assertIn("user_r2_", received, "the second batch never reached ingest")
        self.assertTrue(self.called(r"^docker build .*hookline-ingest:e2e-\d{8}-\d{6}"), "a per-run tag")
        self.assertTrue(self.called(r"^kind load image-archive "))
        self.assertFalse(self.called(r"^kind load docker-image"))
        self.assert_cleaned_up(result)

    def test_a_kept_cluster_is_reused_and_kept(self):
        first = self.run_script("--keep")
        self.assertEqual(first.returncode, 0, first.stderr[-3000:])
        self.assertFalse(self.called(r"^kind delete cluster"))
        second = self.run_script("--keep")
        self.assertEqual(second.returncode, 0, second.stderr[-3000:])
        self.assertIn("reusing the kept cluster", second.stderr)
        self.assertEqual(len([c for c in self.calls() if c.startswith("kind create cluster")]), 1)
        tags = {m for c in self.calls() for m in re.findall(r"image\.operator\.tag=(\S+)", c)}
        self.assertEqual(len(tags), 2, f"each run needs a tag of its own: {tags}")


class Trap(FakeCluster):
    def test_a_failure_after_the_port_forward_died_prints_diagnostics_and_deletes_the_cluster(self):
        # The second certain failure: `[[ -n $forward_pid ]] && kill …` on a
        # dead port-forward ended the EXIT trap under `set -e`: no
        # diagnostics, and the cluster left behind.
        self.seed_images("t1")
        result = self.run_script(
            "--skip-build",
            "--tag",
            "t1",
            HOOKLINE_E2E_SKIP_BUILD="1",
            HOOKLINE_FAKE_FORWARD_REQUESTS="1",
            HOOKLINE_FAKE_FAIL=r"^kubectl .* get secret ",
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--- state at failure", result.stderr)
        self.assertTrue(self.called(r" logs -l app.kubernetes.io/component=operator"), "no operator logs")
        self.assert_cleaned_up(result)

    def test_every_failing_step_is_diagnosed_and_cleaned_up(self):
        for failing in (
            r"^kind create cluster",
            r"^kind load image-archive",
            r"^helm upgrade",
            r"wait whp/payments --for=condition=Ready",
            r"rollout status deployment/payments-worker-orders-webhooks",
            r"^kubectl .* delete whp",
        ):
            with self.subTest(failing=failing):
                self.reset_world()
                self.seed_images("t1")
                result = self.run_script("--skip-build", "--tag", "t1", HOOKLINE_FAKE_FAIL=failing)
                self.assertEqual(result.returncode, 1, result.stderr[-3000:])
                self.assertRegex(result.stderr, r"--- FAILED \(exit 1\) during: \S")
                self.assertIn("--- state at failure", result.stderr)
                self.assert_cleaned_up(result)

    def test_a_wrong_kind_fails_at_once_and_leaves_an_existing_cluster_alone(self):
        self.seed(clusters=[CLUSTER])
        result = self.run_script(HOOKLINE_FAKE_KIND_VERSION="v0.27.0")
        self.assertEqual(result.returncode, 1)
        self.assertIn("kind v0.32.0 is expected, found v0.27.0", result.stderr)
        self.assertFalse(self.called(r"^kind (create|delete)"), "nothing of the cluster may be touched")
        result = self.run_script(HOOKLINE_FAKE_KIND_VERSION="v0.27.0", HOOKLINE_E2E_ANY_KIND="1")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])

    def test_an_interrupt_still_cleans_up(self):
        # Ctrl-C reaches the whole process group: the kubectl waiting in the
        # foreground and the script.
        process = subprocess.Popen(
            [str(SCRIPT)],
            cwd=REPO,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self.called(r"rollout status deployment/kafka"):
            self.assertLess(time.monotonic(), deadline, "the run never reached the brokers")
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(process.returncode, 130, stderr[-3000:])
        self.assertIn("--- state at failure", stderr)
        self.assert_cleaned_up(subprocess.CompletedProcess([], 130, "", stderr))


class PortForward(FakeCluster):
    """The helper itself, with the script sourced: its functions, no run."""

    def helper(self, body: str, **env) -> subprocess.CompletedProcess:
        script = f"""
            set -euo pipefail
            source {SCRIPT}
            cd "$repo"
            forward_log={self.tmp}/port-forward.log
            {body}
        """
        return subprocess.run(
            ["bash", "-c", script],
            cwd=REPO,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    def test_a_dead_port_forward_is_started_again(self):
        result = self.helper(
            """
            forward_start
            first=$forward_pid
            kill -9 "$first"
            wait "$first" 2>/dev/null || true
            forward_ensure
            [[ $forward_pid != "$first" ]] || { echo "still the dead one" >&2; exit 1; }
            python3 tests/e2e/provider.py ready --url "$ingest_url"
            echo "answers through $forward_pid"
            forward_stop
            forward_stop
            """
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("answers through", result.stdout)
        self.assertIn("a new one", result.stderr)
        self.assertEqual(len(self.forwards()), 2)
        self.assertEqual([p for p in self.forwards() if alive(p)], [])

    def test_a_port_forward_that_keeps_dying_is_started_each_time(self):
        # Each stand-in answers one request, then exits ("lost connection to pod").
        result = self.helper(
            """
            forward_start
            for i in 1 2 3; do forward_ensure; done
            forward_stop
            """,
            HOOKLINE_FAKE_FORWARD_REQUESTS="1",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertGreaterEqual(len(self.forwards()), 4)

    def test_stopping_a_port_forward_that_died_is_not_an_error(self):
        result = self.helper(
            """
            forward_start
            kill -9 "$forward_pid"
            sleep 0.2
            forward_stop
            echo stopped
            """
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("stopped", result.stdout)


class Provider(unittest.TestCase):
    def test_gives_up_within_seconds_when_nothing_listens(self):
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(E2E / "provider.py"), "send", "--url", f"http://127.0.0.1:{free_port()}",
             "--secret", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "--run", "x"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn("unreachable", result.stderr)


class Pins(unittest.TestCase):
    def test_the_nodes_the_kind_version_and_the_readme_agree(self):
        config = (REPO / "kind-config.yaml").read_text()
        images = re.findall(r"^\s+image:\s*(\S+)", config, re.M)
        roles = re.findall(r"^\s+- role:\s*(\S+)", config, re.M)
        self.assertEqual(roles.count("worker"), 2, "two workers, for the operator's two replicas")
        self.assertEqual(len(set(images)), 1, images)
        self.assertRegex(images[0], r"^kindest/node:v1\.33\.\d+@sha256:[0-9a-f]{64}$")
        kind_version = re.search(r"^kind_version=(\S+)$", SCRIPT.read_text(), re.M).group(1)
        self.assertIn(kind_version, config, "kind-config.yaml says which kind its image is for")
        readme = (REPO / "README.md").read_text()
        section = readme[readme.index("## Kubernetes") :]
        section = section[: section.index("\n## ", 1)]
        self.assertIn(f"kind {kind_version}", section)
        self.assertIn(images[0].split("@")[0].split(":")[1], section)

    def test_the_images_pulled_and_loaded_are_those_the_manifests_run(self):
        script = SCRIPT.read_text()
        listed = re.search(r"^third_party_images=\(\n(.*?)\n\)", script, re.M | re.S).group(1).split()
        run = set()
        for manifest in (E2E / "manifests").glob("*.yaml"):
            run |= set(re.findall(r"^\s+image:\s*(\S+)", manifest.read_text(), re.M))
        self.assertEqual(set(listed), run)
        for image in run:
            self.assertNotRegex(image, r":(latest)?$|^[^:]+$", "a tag that moves")


if __name__ == "__main__":
    unittest.main()
