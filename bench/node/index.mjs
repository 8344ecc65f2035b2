// The webhook's cold start on the seed's Node stack, for comparison only: load the AWS SDK v3
// DynamoDB client and standardwebhooks, build both at init, then ask the Runtime API for work.
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { Webhook } from "standardwebhooks";

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const client = new DynamoDBClient({
  region: process.env.AWS_REGION || "us-east-1",
  endpoint: process.env.DYNAMODB_ENDPOINT,
});
const webhook = new Webhook(process.env.DODO_WEBHOOK_SECRET.replace(/^whsec_/, ""));

for (;;) {
  const next = await fetch(`http://${api}/2018-06-01/runtime/invocation/next`);
  const requestId = next.headers.get("lambda-runtime-aws-request-id");
  const event = JSON.parse(await next.text());
  let response;
  try {
    webhook.verify(event.body ?? "", event.headers ?? {});
    await client.send(new GetItemCommand({ TableName: "llmxt-payments", Key: { payment_id: { S: "x" } } }));
    response = { statusCode: 200, body: JSON.stringify({ outcome: "processed" }) };
  } catch {
    response = { statusCode: 401, body: JSON.stringify({ error: "invalid webhook signature" }) };
  }
  await fetch(`http://${api}/2018-06-01/runtime/invocation/${requestId}/response`, {
    method: "POST",
    body: JSON.stringify(response),
  });
}
