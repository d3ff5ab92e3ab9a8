import json
import os

import six


def lambda_handler(event, context):
    message = "hello world"
    print(f"{message} from stage {os.environ.get('STAGE')}")
    return {
        "statusCode": 200,
        "body": json.dumps({"message": six.ensure_str(message)}),
    }
