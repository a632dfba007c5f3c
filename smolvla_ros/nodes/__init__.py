"""One rclpy Node per file, each with a ``main()`` console-script entry point."""
