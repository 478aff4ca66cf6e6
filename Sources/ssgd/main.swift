import ArgumentParser

SSGD.main()
