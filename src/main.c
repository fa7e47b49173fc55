/* main.c: placeholder until the wiring lands. */
int main(void)
{
    return 0;
}
