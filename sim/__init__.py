"""The proving ground: a simulated ECS + Auto Scaling + EventBridge control plane."""
