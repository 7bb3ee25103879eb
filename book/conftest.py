def pytest_addoption(parser):
    parser.addoption("--edition", choices=("learner", "student"), default="learner",
                     help="which built site to test: build/book/html or build/book-student/html")
