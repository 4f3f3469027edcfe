"""Copy every object under a prefix of an S3-compatible bucket to a directory.

Usage: s3_download.py ENDPOINT BUCKET PREFIX OUT_DIR   (credentials: AWS_* variables)
Prints the number of objects copied.
"""

import os
import sys

import boto3


def main():
    endpoint, bucket, prefix, out = sys.argv[1:5]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix) + 1 :]
            if "/" in name or not name:
                sys.exit(f"unexpected object {obj['Key']}")
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            with open(os.path.join(out, name), "wb") as f:
                f.write(body)
            count += 1
    print(count)


if __name__ == "__main__":
    main()
