import json

import idna


def lambda_handler(event, context):
    name = (event.get("pathParameters") or {}).get("name", "world")
    host = idna.encode(f"{name}.example").decode()
    print(f"greeting {name} ({host})")
    return {
        "statusCode": 200,
        "body": json.dumps({"greeting": f"Hello, {name}!", "host": host}),
    }
