"""The runtime that moves records through Kafka: the loop, the checkpoint, clients, topics and the changelog."""
