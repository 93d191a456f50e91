print("choreo")
