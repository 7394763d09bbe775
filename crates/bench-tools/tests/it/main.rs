//! Tests of what bench-tools builds on, against a DynamoDB Local of the test's own (e2e's
//! harness): ddb-core's stream shard reader, as stream-lag and the stream worker use it.

mod stream;
