"""Creates the one IAM identity the harness signs S3 requests with.

moto_server checks request signatures once INITIAL_NO_AUTH_ACTION_COUNT
unauthenticated requests have been served; these three IAM calls are those
requests. Prints {"accessKeyId": ..., "secretAccessKey": ...} as JSON.
"""
import json
import sys

import boto3

endpoint = sys.argv[1]
# An https endpoint with a private CA: the CA bundle to trust.
verify = sys.argv[2] if len(sys.argv) > 2 else None
iam = boto3.client(
    "iam",
    endpoint_url=endpoint,
    verify=verify,
    region_name="us-east-1",
    aws_access_key_id="bootstrap",
    aws_secret_access_key="bootstrap",
)
iam.create_user(UserName="entente-test")
iam.put_user_policy(
    UserName="entente-test",
    PolicyName="all",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    ),
)
key = iam.create_access_key(UserName="entente-test")["AccessKey"]
print(json.dumps({"accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"]}))
