"""daemon-guard: daemon-first placement and ordered drains for ECS on EC2 Auto Scaling groups."""
