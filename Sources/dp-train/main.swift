print("dp-train")
