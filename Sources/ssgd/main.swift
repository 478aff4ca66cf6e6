import Engine
print("ssgd")
