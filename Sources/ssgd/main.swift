import SSGDCommands

SSGD.main()
