"""Start the tracking server: wait for the object store, create the artifact bucket, exec mlflow.

Settings come from the environment (compose.yaml sets them):
MLFLOW_BACKEND_STORE_URI      postgresql+psycopg2://user:password@host:5432/db, or its parts:
                              POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD
                              (ECS injects the password alone from Secrets Manager)
MLFLOW_ARTIFACTS_DESTINATION  s3://bucket[/prefix] (the server proxies every artifact there)
MLFLOW_S3_ENDPOINT_URL        the S3-compatible endpoint (MinIO); unset for AWS S3
PORT, MLFLOW_WORKERS, MLFLOW_ALLOWED_HOSTS
"""

import os
import sys
import time
from urllib.parse import quote, urlsplit

WAIT_S = 120.0


def fail(message: str, hint: str) -> None:
    print(f"error: {message}\nhint: {hint}", file=sys.stderr)
    sys.exit(2)


def ensure_bucket(destination: str) -> None:
    """Create the destination's bucket if missing, waiting for the store to answer (it starts beside us)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = urlsplit(destination).netloc
    client = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None)
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                client.create_bucket(Bucket=bucket)
                print(f"created bucket {bucket}", flush=True)
                return
            last = str(error)
        except BotoCoreError as error:
            last = str(error)
        if time.monotonic() > deadline:
            fail(
                f"the object store did not answer for bucket {bucket} within {WAIT_S:.0f} s: {last}",
                "check MLFLOW_S3_ENDPOINT_URL and the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the store",
            )
        time.sleep(1)


def backend_uri() -> str | None:
    uri = os.environ.get("MLFLOW_BACKEND_STORE_URI")
    if uri or not os.environ.get("POSTGRES_HOST"):
        return uri
    env = os.environ
    # quoted: a generated password may hold characters that mean something in a URL
    user = quote(env.get("POSTGRES_USER", "mlflow"), safe="")
    password = quote(env.get("POSTGRES_PASSWORD", ""), safe="")
    host, port, db = env["POSTGRES_HOST"], env.get("POSTGRES_PORT", "5432"), env.get("POSTGRES_DB", "mlflow")
    return f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{db}"


def main() -> None:
    backend = backend_uri()
    destination = os.environ.get("MLFLOW_ARTIFACTS_DESTINATION")
    if not backend:
        fail(
            "MLFLOW_BACKEND_STORE_URI is not set",
            "set it to postgresql+psycopg2://user:password@host:5432/db (or set POSTGRES_HOST and POSTGRES_PASSWORD)",
        )
    if not destination:
        fail("MLFLOW_ARTIFACTS_DESTINATION is not set", "set it to s3://<bucket>, the bucket artifacts go to")
    assert backend is not None and destination is not None
    if destination.startswith("s3://"):
        ensure_bucket(destination)
    args = [
        "mlflow", "server",
        "--backend-store-uri", backend,
        "--artifacts-destination", destination,
        "--serve-artifacts",
        "--host", "0.0.0.0",
        "--port", os.environ.get("PORT", "5000"),
        "--workers", os.environ.get("MLFLOW_WORKERS", "2"),
        # Clients reach the server by its compose service name, a load balancer's name or localhost.
        "--allowed-hosts", os.environ.get("MLFLOW_ALLOWED_HOSTS", "*"),
    ]  # fmt: skip
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
