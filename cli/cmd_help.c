/* cli/cmd_help.c: `kiln help [COMMAND]` and the help text of every command.
 *
 * The texts live here, in one table, so `kiln help render`, `kiln render
 * --help` and the usage lines printed after a usage error never disagree.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct help_entry {
    const char *name;
    const char *summary; /* one line, for the overview */
    const char *usage;   /* "usage: ..." lines, each ending in a newline */
    const char *body;    /* description, flags and examples */
} help_entry;

static const help_entry entries[] = {
    {"render", "render an RGD and its instances into Kubernetes manifests",
     "usage: kiln render -f FILE [-f FILE]... [--observed DIR] [--status] [-o yaml|json]\n",
     "Expands every instance in the input through its ResourceGraphDefinition and\n"
     "prints the objects kiln would apply, in topological order (the items of a\n"
     "forEach collection in iteration order). Nothing needs a cluster. The output\n"
     "is byte-identical across runs, so it can be diffed or served by an Argo CD\n"
     "Config Management Plugin.\n"
     "\n"
     "The files hold YAML documents (several per file, \"---\" between them);\n"
     "\"-\" reads standard input. Exactly one document must be a\n"
     "kiln.dev/v1alpha1 ResourceGraphDefinition; every other document must be an\n"
     "instance of the kind it defines. Instances are rendered in input order.\n"
     "\n"
     "Objects that read another resource's status stay pending until that\n"
     "resource is observed; pending resources are listed on stderr and left out.\n"
     "--observed DIR supplies observed objects: every *.yaml, *.yml or *.json\n"
     "file in DIR (in name order) may hold several documents, and each one is\n"
     "matched to the node whose desired object has the same apiVersion, kind,\n"
     "namespace and name. Documents that match nothing are listed on stderr.\n"
     "\n"
     "On any error nothing is printed on stdout, the error goes to stderr as\n"
     "\"kiln render: FILE: PATH: MESSAGE\", and the exit status is 1.\n"
     "\n"
     "Flags:\n"
     "  -f, --file FILE      read documents from FILE (repeatable; \"-\" is stdin)\n"
     "      --observed DIR   observed objects to render against\n"
     "      --status         also print each instance's projected status on stderr\n"
     "                       (\"kiln render: NAMESPACE/NAME: status: {...}\")\n"
     "  -o, --output FORMAT  yaml (default: documents separated by \"---\") or\n"
     "                       json (one v1 List holding every object)\n"
     "\n"
     "Examples:\n"
     "  kiln render -f examples/web-app/rgd.yaml -f examples/web-app/instance.yaml\n"
     "  cat rgd.yaml instance.yaml | kiln render -f - -o json\n"
     "  kiln render -f rgd.yaml -f instance.yaml --observed observed/ --status\n"},
    {"graph", "print the dependency graph of an RGD",
     "usage: kiln graph FILE [--format text|dot|mermaid]\n",
     "Compiles the ResourceGraphDefinition in FILE and prints its resources in\n"
     "topological order with their node kinds and the resources each depends on.\n"
     "Edges point from a dependency to the resource that reads it.\n"
     "\n"
     "Flags:\n"
     "      --format FORMAT  text (default), dot (Graphviz) or mermaid\n"
     "\n"
     "Examples:\n"
     "  kiln graph examples/chain/rgd.yaml\n"
     "  kiln graph examples/chain/rgd.yaml --format dot | dot -Tsvg > chain.svg\n"},
    {"lint", "check RGDs and report every error with its path", "usage: kiln lint FILE...\n",
     "Compiles every ResourceGraphDefinition in the files (SimpleSchema, every\n"
     "expression and script, dependencies, cycles) and dry-renders it with the\n"
     "schema's defaults. Every error is printed as \"FILE: PATH: MESSAGE\"; a\n"
     "good RGD prints \"FILE: NAME: ok\". Documents that are not RGDs are skipped.\n"
     "\n"
     "Exit status: 0 when every RGD compiles, 1 when any error was found.\n"
     "\n"
     "Examples:\n"
     "  kiln lint examples/*/rgd.yaml\n"},
    {"crd", "print the CustomResourceDefinition of an RGD, or kiln's own",
     "usage: kiln crd FILE\n"
     "       kiln crd --builtin\n",
     "Prints, as YAML, the CustomResourceDefinition kiln generates for the kind\n"
     "that the ResourceGraphDefinition in FILE defines. With --builtin, prints\n"
     "the CRDs of kiln's own kinds as a YAML stream (this is how\n"
     "crds/resourcegraphdefinitions.kiln.dev.yaml is made).\n"
     "\n"
     "Flags:\n"
     "      --builtin  kiln's own CRDs instead of an RGD's\n"
     "\n"
     "Examples:\n"
     "  kiln crd examples/web-app/rgd.yaml | kubectl apply -f -\n"
     "  kiln crd --builtin > crds/resourcegraphdefinitions.kiln.dev.yaml\n"},
    {"dev", "run the embedded dev cluster and the controller", "usage: kiln dev [FLAGS]\n",
     "Starts kiln's embedded Kubernetes-API-compatible dev cluster on 127.0.0.1,\n"
     "writes a kubeconfig and runs the controller against it. Run `kiln dev\n"
     "--help` for its flags. Builds without the dev cluster exit with status 2.\n"},
    {"controller", "run the controller against a cluster",
     "usage: kiln controller [--kubeconfig PATH] [--context NAME] [--workers N] [--install-crds]\n"
     "                       [--metrics-bind-address ADDR] [--health-probe-bind-address ADDR]\n"
     "                       [--namespace NS] [--leader-elect] [--leader-election-namespace NS]\n"
     "                       [--leader-election-id NAME] [--gpucheck-image IMAGE]\n"
     "                       [--log-format json|text]\n",
     "Watches every ResourceGraphDefinition and every instance of the kinds they\n"
     "define, and keeps each instance's children applied, in dependency order, with\n"
     "kstatus-shaped status. It connects through --kubeconfig, else $KUBECONFIG,\n"
     "else the in-cluster service account, else ~/.kube/config. SIGTERM drains the\n"
     "work queue and exits.\n"
     "\n"
     "Flags:\n"
     "      --kubeconfig PATH                 kubeconfig to use (default: $KUBECONFIG,\n"
     "                                        then in-cluster, then ~/.kube/config)\n"
     "      --context NAME                    kubeconfig context\n"
     "      --workers N                       reconcile workers, each with its own Lua\n"
     "                                        state (default 4)\n"
     "      --metrics-bind-address ADDR       /metrics listener (default :8080; 0 disables);\n"
     "                                        also --metrics-addr\n"
     "      --health-probe-bind-address ADDR  /healthz and /readyz (default :8081);\n"
     "                                        also --health-addr\n"
     "      --qps N, --burst N                client-side request limit (default: none,\n"
     "                                        the work queue bounds the rate)\n"
     "      --install-crds                    server-side apply kiln's own CRDs first\n"
     "      --namespace NS                    reconcile only the instances in NS\n"
     "                                        (default: every namespace)\n"
     "      --leader-elect                    take a coordination.k8s.io Lease first\n"
     "      --leader-election-namespace NS    namespace of the Lease (default:\n"
     "                                        --namespace, else the kubeconfig's)\n"
     "      --leader-election-id NAME         name of the Lease (default kiln-controller)\n"
     "      --gpucheck-image IMAGE            image of GPU validation Jobs (default\n"
     "                                        ghcr.io/kiln-dev/kiln-gpucheck:<version>)\n"
     "      --log-format FORMAT               json (default) or text\n"
     "\n"
     "Examples:\n"
     "  kiln controller --kubeconfig ~/.kube/config --log-format text\n"
     "  kiln controller --leader-elect --leader-election-namespace kiln-system\n"
     "  kiln controller --install-crds --kubeconfig ~/.kube/config\n"},
    {"recipe", "list the shipped recipes and resolve runtime criteria",
     "usage: kiln recipe list [-o text|yaml|json]\n"
     "       kiln recipe resolve --service S --accelerator A --os O --intent I\n"
     "                           [--platform P] [-o text|yaml|json]\n",
     "list     the runtime criteria and their values, the overlays, the locked\n"
     "         components and the recipe RGDs that ship in recipes/\n"
     "resolve  the components (pinned chart versions, values, dependencies in\n"
     "         deployment order), constraints and GPU validation settings for the\n"
     "         criteria, and why each overlay applied. A criterion no overlay\n"
     "         matches, an unknown value or ambiguous overlays exit 1 with a\n"
     "         message naming the criterion.\n"
     "\n"
     "Services: eks gke aks oke kind self-managed; intents: inference training.\n"
     "\n"
     "Examples:\n"
     "  kiln recipe list\n"
     "  kiln recipe resolve --service eks --accelerator h100 --os ubuntu --intent inference\n"},
    {"version", "print kiln's version", "usage: kiln version\n",
     "Prints \"kiln VERSION\" (the project version this binary was built from).\n"},
    {"help", "show help for kiln or one command", "usage: kiln help [COMMAND]\n",
     "Without COMMAND, lists every command. `kiln COMMAND --help` is the same as\n"
     "`kiln help COMMAND`.\n"
     "\n"
     "Examples:\n"
     "  kiln help render\n"},
};

static const help_entry *find_entry(const char *name)
{
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        if (strcmp(entries[i].name, name) == 0)
            return &entries[i];
    return NULL;
}

static void print_overview(FILE *f)
{
    fputs("kiln turns a small custom resource into a full Kubernetes stack, through a\n"
          "ResourceGraphDefinition whose templates are sandboxed Lua.\n"
          "\n"
          "usage: kiln [--log-level LEVEL] COMMAND [ARGS]\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        fprintf(f, "  %-10s  %s\n", entries[i].name, entries[i].summary);
    fputs("\n"
          "Global flags:\n"
          "  --log-level LEVEL  debug, info, warn (default), error or off; logs go to stderr\n"
          "  -h, --help         show help\n"
          "\n"
          "Exit status: 0 success, 1 invalid input or failed command, 2 usage error.\n"
          "Run `kiln help COMMAND` for a command's flags and examples.\n",
          f);
}

bool kiln_cli_help(FILE *f, const char *cmd)
{
    if (!cmd) {
        print_overview(f);
        return true;
    }
    const help_entry *e = find_entry(cmd);
    if (!e)
        return false;
    fprintf(f, "kiln %s: %s\n\n%s\n%s", e->name, e->summary, e->usage, e->body);
    return true;
}

int kiln_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kiln%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    const help_entry *e = cmd ? find_entry(cmd) : NULL;
    if (e)
        fprintf(stderr, "%sRun 'kiln help %s' for more.\n", e->usage, e->name);
    else
        fputs("usage: kiln [--log-level LEVEL] COMMAND [ARGS]\n"
              "Run 'kiln help' for the list of commands.\n",
              stderr);
    return KILN_EXIT_USAGE;
}

bool kiln_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

int kiln_cmd_help(int argc, char **argv)
{
    if (argc > 2)
        return kiln_cli_usage_error("help", "expected at most one command, got %d arguments",
                                    argc - 1);
    if (argc == 1 || kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, argc == 1 ? NULL : "help");
        return KILN_EXIT_OK;
    }
    if (!kiln_cli_help(stdout, argv[1]))
        return kiln_cli_usage_error("help", "unknown command \"%s\"", argv[1]);
    return KILN_EXIT_OK;
}
