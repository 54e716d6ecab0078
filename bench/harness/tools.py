"""The File-mode contenders: trainfeed and the peers a user would pick instead, each in its
default configuration and tuned as its own documentation suggests. Every tool gets the endpoint
and credentials explicitly, and a private, otherwise empty configuration, so that nothing on the
machine (a ~/.aws/config, an AWS_CA_BUNDLE) changes what is measured."""
import os
from dataclasses import dataclass

from .datasets import BUCKET

AWS = "/usr/bin/aws"  # Debian's; another aws earlier in PATH may be a different version


@dataclass(frozen=True)
class Contender:
    tool: str  # "trainfeed", "aws-cli", "rclone", "s3cmd"
    variant: str  # "default" or "tuned"
    describe: str  # the exact settings, for the report

    @property
    def label(self):
        return self.tool if self.tool == "trainfeed" else f"{self.tool} ({self.variant})"


def rclone_env(config_dir, endpoint_env):
    """rclone's remote "bench:" from the environment (an empty config file in config_dir), so no
    secret is written to disk."""
    return {"RCLONE_CONFIG": os.path.join(config_dir, "rclone.conf"),
            "RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint_env["AWS_ENDPOINT_URL"],
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": endpoint_env["AWS_ACCESS_KEY_ID"],
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": endpoint_env["AWS_SECRET_ACCESS_KEY"],
            "RCLONE_CONFIG_BENCH_REGION": endpoint_env["AWS_DEFAULT_REGION"],
            "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true"}


def base_env(endpoint_env):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "RCLONE_")) and k not in ("http_proxy", "https_proxy")}
    env.update(endpoint_env)
    return env


class DownloadTools:
    """Builds the command line of each contender for 'download prefix P into DST'."""

    def __init__(self, trainfeed, work_dir):
        self.trainfeed = trainfeed
        self.dir = os.path.join(work_dir, "tool-config")
        os.makedirs(self.dir, exist_ok=True)
        self._write("aws-default.ini", "[default]\n")
        # aws cli tuning knobs (docs: "AWS CLI S3 Configuration"): more concurrent requests, a
        # queue deep enough to keep them busy, larger parts for large objects.
        self._write("aws-tuned.ini", "[default]\ns3 =\n  max_concurrent_requests = 64\n"
                    "  max_queue_size = 10000\n  multipart_threshold = 16MB\n"
                    "  multipart_chunksize = 16MB\n")
        self._write("rclone.conf", "")

    def _write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    CONTENDERS = [
        Contender("trainfeed", "default", "trainfeed download (defaults)"),
        Contender("aws-cli", "default", "aws s3 cp --recursive (10 requests)"),
        Contender("aws-cli", "tuned", "max_concurrent_requests=64, multipart_chunksize=16MB"),
        Contender("rclone", "default", "rclone copy (4 transfers, 8 checkers)"),
        Contender("rclone", "tuned", "--transfers 32 --checkers 32 --multi-thread-streams 8 "
                                     "--multi-thread-cutoff 16M --fast-list"),
        Contender("s3cmd", "default", "s3cmd sync (no concurrency setting exists)"),
    ]

    def command(self, contender, dataset, endpoint_env, dst):
        env = base_env(endpoint_env)
        endpoint = endpoint_env["AWS_ENDPOINT_URL"]
        src = f"s3://{BUCKET}/{dataset.prefix}"
        if contender.tool == "trainfeed":
            return [self.trainfeed, "-q", "download", src, dst], env
        if contender.tool == "aws-cli":
            env["AWS_CONFIG_FILE"] = os.path.join(self.dir, f"aws-{contender.variant}.ini")
            env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
            return [AWS, "--endpoint-url", endpoint, "s3", "cp", "--recursive",
                    "--only-show-errors", "--no-progress", src, dst], env
        if contender.tool == "rclone":
            env.update(rclone_env(self.dir, endpoint_env))
            argv = ["rclone", "copy", "-q", f"bench:{BUCKET}/{dataset.name}", dst]
            if contender.variant == "tuned":
                argv += ["--transfers", "32", "--checkers", "32", "--multi-thread-streams", "8",
                         "--multi-thread-cutoff", "16M", "--fast-list"]
            return argv, env
        if contender.tool == "s3cmd":
            host = endpoint.split("//", 1)[1]
            conf = os.path.join(self.dir, "s3cmd.cfg")
            self._write("s3cmd.cfg", "[default]\n"
                        f"access_key = {endpoint_env['AWS_ACCESS_KEY_ID']}\n"
                        f"secret_key = {endpoint_env['AWS_SECRET_ACCESS_KEY']}\n"
                        f"host_base = {host}\nhost_bucket = {host}\nuse_https = False\n"
                        "signature_v2 = False\nbucket_location = us-east-1\n"
                        "progress_meter = False\n")
            os.makedirs(dst, exist_ok=True)
            return ["s3cmd", "-c", conf, "--quiet", "sync", src, dst + "/"], env
        raise ValueError(contender.tool)
