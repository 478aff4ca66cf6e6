// OpenSSL's libcrypto (Debian: libssl-dev): SHA-256 through the EVP digest API.
#include <openssl/evp.h>
